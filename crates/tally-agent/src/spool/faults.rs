//! The spool's two faults that are the disk's, not the agent's: a full disk and a damaged
//! file. Neither may stop metering, and neither may lose records silently.
//!
//! - A full disk: a write that fails for want of space loses its records, but they are counted
//!   (in memory first, then in the stored `dropped` count with the next write that succeeds)
//!   and the count reaches the server with the next upload, like any record dropped by the
//!   bound. The metering state that was not written is written at the next checkpoint.
//! - A damaged file (not a database, or failing SQLite's `quick_check` when opened): it is moved
//!   aside as `spool.db.corrupt-<UTC time>` (its WAL beside it, so it can still be inspected),
//!   the agent says so and where, and a new spool is started. The records it held that can
//!   still be counted are counted as dropped.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::{Result, Spool, SpoolError};
use tally_core::wire::v1::UsageRecordV1;

/// SQLite's primary result codes this module tells apart.
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
const SQLITE_NOTADB: i64 = 26;

impl SpoolError {
    /// A write failed for want of disk space; its records are counted as dropped.
    pub fn is_full(&self) -> bool {
        matches!(self, SpoolError::Full { .. }) || self.sqlite_code() == Some(SQLITE_FULL)
    }

    /// The spool file is not a usable database.
    fn is_corrupt(&self) -> bool {
        matches!(self, SpoolError::Corrupt(_))
            || matches!(self.sqlite_code(), Some(SQLITE_CORRUPT | SQLITE_NOTADB))
    }

    /// SQLite's primary result code (the extended code's low byte).
    fn sqlite_code(&self) -> Option<i64> {
        let SpoolError::Database(sqlx::Error::Database(e)) = self else {
            return None;
        };
        e.code()?.parse::<i64>().ok().map(|c| c & 0xff)
    }
}

impl Spool {
    /// Writes records durably, with the state that produced them when given; returns once both
    /// are on disk. Records dropped earlier for a full disk go into the stored count with them.
    /// When the disk is full, the records are counted as dropped and [`SpoolError::Full`] says
    /// so: the caller keeps metering, and writes its state again later.
    pub async fn push(&self, records: &[UsageRecordV1], state: Option<(&str, &str)>) -> Result<()> {
        let unsaved = self.unsaved_dropped.load(Ordering::SeqCst);
        let mut conn = self.pool.acquire().await?;
        let written = self.write(&mut conn, records, state, unsaved).await;
        if written.is_err() {
            // SQLite keeps a transaction whose COMMIT failed (on a full disk, say) open, with
            // the write lock: back in the pool, that connection would block every later write
            // ("database is locked"). Closing it ends the transaction.
            let _ = sqlx::Connection::close(conn.detach()).await;
        }
        match written {
            Ok(()) => {
                if unsaved > 0 {
                    self.unsaved_dropped.fetch_sub(unsaved, Ordering::SeqCst);
                    tracing::warn!(
                        dropped = unsaved,
                        "the spool can write again; the records dropped while its disk was full are counted and reported to the server"
                    );
                }
                Ok(())
            }
            Err(e) if e.is_full() => {
                let dropped = records.len() as u64;
                let waiting = self.unsaved_dropped.fetch_add(dropped, Ordering::SeqCst) + dropped;
                if dropped > 0 {
                    tracing::error!(
                        dropped,
                        dropped_since_full = waiting,
                        "the spool's disk is full: usage records are dropped and counted; free space in the state directory"
                    );
                }
                Err(SpoolError::Full { dropped })
            }
            Err(e) => Err(e),
        }
    }

    /// Records dropped while the disk was full that are not in the stored count yet.
    pub fn dropped_unsaved(&self) -> u64 {
        self.unsaved_dropped.load(Ordering::SeqCst)
    }

    /// [`Spool::open`], moving a damaged spool file aside first (see the module's comment).
    pub async fn open_or_set_aside(path: &Path, max_records: u64) -> Result<Self> {
        let (error, held) = match Spool::open(path, max_records).await {
            Ok(spool) => match spool.check().await {
                Ok(()) => return Ok(spool),
                Err(e) => {
                    let held = spool.countable().await;
                    spool.pool.close().await;
                    (e, held)
                }
            },
            Err(e) if e.is_corrupt() => (e, None),
            Err(e) => return Err(e),
        };
        if !error.is_corrupt() {
            return Err(error);
        }
        let aside = set_aside(path).map_err(|e| {
            SpoolError::Corrupt(format!(
                "{error}; moving {} aside failed too: {e}",
                path.display()
            ))
        })?;
        let counted = held.unwrap_or(0);
        tracing::error!(
            error = %error,
            moved_to = %aside.display(),
            records_counted_as_dropped = counted,
            "the spool file is damaged: it was moved aside and a new spool started; records it held that could not be counted are lost"
        );
        let spool = Spool::open(path, max_records).await?;
        spool.ids_after_now().await?;
        if counted > 0 {
            spool.unsaved_dropped.store(counted, Ordering::SeqCst);
            spool.push(&[], None).await?;
        }
        Ok(spool)
    }

    /// Makes a new spool's ids start past any a damaged one can have used (a count of
    /// microseconds since 1970, far above any count of records): a batch is named by its id
    /// range, and the server answers a name it has seen as a replay, storing nothing.
    async fn ids_after_now(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM sqlite_sequence WHERE name = 'spool'")
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ('spool', $1)")
            .bind(chrono::Utc::now().timestamp_micros())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// SQLite's `quick_check`: a damaged page shows here rather than in the middle of metering.
    async fn check(&self) -> Result<()> {
        let found: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_all(&self.pool)
            .await?;
        if found.len() == 1 && found[0] == "ok" {
            return Ok(());
        }
        Err(SpoolError::Corrupt(found.join("; ")))
    }

    /// The records and dropped count a damaged spool still shows, if it can be read that far.
    async fn countable(&self) -> Option<u64> {
        let records = self.len().await.ok()?;
        let dropped = self.dropped().await.unwrap_or(0);
        u64::try_from(records).ok().map(|r| r + dropped)
    }
}

/// Moves `path` (and its WAL and shared-memory files) to `<path>.corrupt-<UTC time>`; returns
/// the new path.
fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{stamp}"));
    let aside = PathBuf::from(aside);
    for suffix in ["-wal", "-shm"] {
        let (mut from, mut to) = (path.as_os_str().to_owned(), aside.as_os_str().to_owned());
        from.push(suffix);
        to.push(suffix);
        match std::fs::rename(&from, &to) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

/// The copies of the spool at `path` that were set aside (not their WAL or shared memory),
/// for whoever inspects a damaged spool: the naming of [`set_aside`], read back in one place.
pub fn set_aside_copies(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.corrupt-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&prefix) && !name.ends_with("-wal") && !name.ends_with("-shm")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    use sqlx::SqlitePool;

    use super::*;

    fn record(id: &str) -> UsageRecordV1 {
        let at = chrono::Utc::now();
        serde_json::from_value(serde_json::json!({
            "meter_data_id": id,
            "file": {"file_name": "code", "original_file_name": "code", "version": "",
                     "product_name": "", "publisher": "", "language": 65535},
            "user": {"account": "ann"},
            "start_time": at - chrono::Duration::minutes(1), "start_time_offset": 0,
            "end_time": at, "end_time_offset": 0,
            "started": true, "still_running": false,
            "start_not_captured": false, "end_not_captured": false, "in_ts_session": false
        }))
        .unwrap()
    }

    /// The spool at `path` reopened with SQLite's page limit at its current size: every write
    /// that needs a new page fails with `SQLITE_FULL`, as on a full disk.
    async fn capped(path: &Path) -> Spool {
        let pages = Spool::open(path, 100).await.unwrap();
        let count: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&pages.pool)
            .await
            .unwrap();
        pages.pool.close().await;
        let options = SqliteConnectOptions::from_str("sqlite://")
            .unwrap()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("max_page_count", count.to_string());
        let mut spool = Spool::open(path, 100).await.unwrap();
        spool.pool = SqlitePool::connect_with(options).await.unwrap();
        spool
    }

    #[tokio::test]
    async fn records_that_find_the_disk_full_are_counted_and_the_count_is_stored_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.db");
        let full = capped(&path).await;
        let many: Vec<_> = (0..200).map(|i| record(&format!("r{i}"))).collect();
        let err = full.push(&many, Some(("k", "v"))).await.unwrap_err();
        assert!(err.is_full(), "{err}");
        assert_eq!(full.dropped_unsaved(), 200);
        assert_eq!(full.len().await.unwrap(), 0);
        assert_eq!(full.state("k").await.unwrap(), None, "the state waits too");
        full.pool.close().await;

        // Space again: the next write, even one of state only, stores the count.
        let spool = Spool::open(&path, 100).await.unwrap();
        spool
            .unsaved_dropped
            .store(full.dropped_unsaved(), Ordering::SeqCst);
        spool.put_state("k", "v").await.unwrap();
        assert_eq!(spool.dropped_unsaved(), 0);
        assert_eq!(spool.dropped().await.unwrap(), 200);
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_moved_aside_and_a_new_spool_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.db");
        std::fs::write(&path, vec![0xA5u8; 16384]).unwrap();
        let spool = Spool::open_or_set_aside(&path, 100).await.unwrap();
        spool.push(&[record("a")], None).await.unwrap();
        assert_eq!(spool.len().await.unwrap(), 1);
        let aside = set_aside_copies(&path);
        assert_eq!(std::fs::read(&aside[0]).unwrap(), vec![0xA5u8; 16384]);
    }

    #[tokio::test]
    async fn a_spool_with_a_damaged_page_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.db");
        {
            let spool = Spool::open(&path, 10_000).await.unwrap();
            let many: Vec<_> = (0..300).map(|i| record(&format!("r{i}"))).collect();
            spool.push(&many, None).await.unwrap();
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&spool.pool)
                .await
                .unwrap();
            spool.pool.close().await;
        }
        // The header and the schema page stay; the pages after them are scribbled over.
        let mut bytes = std::fs::read(&path).unwrap();
        let page = 4096;
        bytes[page * 2..page * 6].fill(0x5A);
        std::fs::write(&path, &bytes).unwrap();

        let spool = Spool::open_or_set_aside(&path, 100).await.unwrap();
        assert_eq!(spool.len().await.unwrap(), 0);
        assert_eq!(set_aside_copies(&path).len(), 1);
        spool.push(&[record("a")], None).await.unwrap();
        let batch = spool.peek(10).await.unwrap().unwrap();
        assert!(
            batch.first > 300,
            "the new spool's first id {} names a batch the old one may have sent",
            batch.first
        );
    }

    #[tokio::test]
    async fn a_healthy_spool_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.db");
        Spool::open(&path, 10)
            .await
            .unwrap()
            .push(&[record("a")], None)
            .await
            .unwrap();
        let spool = Spool::open_or_set_aside(&path, 10).await.unwrap();
        assert_eq!(spool.len().await.unwrap(), 1);
        assert!(set_aside_copies(&path).is_empty());
    }
}
