//! The crash-safe spool: a record is durable (SQLite, WAL, synchronous FULL) before it is
//! offered for upload, and deleted only after the server acknowledges it. Ids are never reused
//! (AUTOINCREMENT): a batch is named by its id range, and a reused range would look like a replay.
//!
//! The metering state (instances being metered, the last heartbeat) lives in the same database
//! and is written in the same transaction as the records it produced, so after a crash the two
//! always agree: no period is reported twice and none is lost.
//!
//! The spool is bounded. When it is full, consecutive records of one instance are merged into
//! one (usage time is kept, only the cycle granularity is lost); if that is not enough, the
//! oldest records are dropped and counted, and the count goes to the server with the next upload.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use tally_core::wire::v1::UsageRecordV1;
use tokio::sync::Notify;

/// The spool, shared by the meter (which writes) and the uploader (which reads and deletes).
#[derive(Clone)]
pub struct Spool {
    pool: SqlitePool,
    max_records: i64,
    /// Signalled when records are durably written: wakes the uploader.
    written: Arc<Notify>,
    /// The id range of the batch being uploaded: the bound neither merges nor drops those
    /// records, or the server would get them twice (merged) or they would count as dropped.
    sending: Arc<Mutex<Option<(i64, i64)>>>,
    /// Records dropped while the disk was full, not yet in the stored count (see [`faults`]).
    unsaved_dropped: Arc<AtomicU64>,
}

mod faults;

pub use faults::set_aside_copies;

/// Why the spool could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool database failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a spooled record cannot be read or written as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "the spool has schema version {version}, newer than this agent's {SCHEMA_VERSION}; \
         run the newer agent, or move spool.db aside (its records are lost to the server)"
    )]
    Newer { version: i64 },
    #[error("the spool's disk is full: {dropped} records were dropped (counted as dropped)")]
    Full { dropped: u64 },
    #[error("the spool file is damaged: {0}")]
    Corrupt(String),
}

type Result<T> = std::result::Result<T, SpoolError>;

/// A batch ready to upload: the id range that names it, and its records.
pub struct Batch {
    pub first: i64,
    pub last: i64,
    pub records: Vec<UsageRecordV1>,
}

/// The schema every spool starts from: the one written before spools carried a version
/// (`user_version` 0). Never change it: a later schema is a new step in [`migrate`].
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance TEXT NOT NULL DEFAULT '',
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY,
    record TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
";

/// The schema version this agent writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

impl Spool {
    /// Opens (or creates) the spool holding at most `max_records` records, upgrading its
    /// schema to [`SCHEMA_VERSION`] first.
    pub async fn open(path: &Path, max_records: u64) -> Result<Self> {
        // Owner-only whatever the umask (it holds who ran what); SQLite gives the -wal and -shm
        // files the main file's mode. An existing file keeps the mode it has; any other
        // failure is SQLite's to report as it opens the file.
        let new = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        if let Ok(file) = new {
            (file.set_permissions(std::fs::Permissions::from_mode(0o600)))
                .map_err(sqlx::Error::Io)?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePool::connect_with(options).await?;
        migrate(&pool).await?;
        Ok(Self {
            pool,
            max_records: i64::try_from(max_records.max(1)).unwrap_or(i64::MAX),
            written: Arc::default(),
            sending: Arc::default(),
            unsaved_dropped: Arc::default(),
        })
    }

    /// Waits until records are written (at once if some were written since the last wait).
    pub async fn written(&self) {
        self.written.notified().await
    }

    /// Writes records durably, with the state that produced them when given, and `unsaved`
    /// dropped records into the stored count; returns once all are on disk. Enforces the bound
    /// afterwards, in the same transaction. [`Spool::push`] calls it.
    async fn write(
        &self,
        conn: &mut sqlx::SqliteConnection,
        records: &[UsageRecordV1],
        state: Option<(&str, &str)>,
        unsaved: u64,
    ) -> Result<()> {
        let mut tx = sqlx::Connection::begin(conn).await?;
        if unsaved > 0 {
            add_dropped(&mut tx, unsaved as i64).await?;
        }
        for r in records {
            sqlx::query("INSERT INTO spool (instance, record) VALUES ($1, $2)")
                .bind(&r.meter_data_id)
                .bind(serde_json::to_string(r)?)
                .execute(&mut *tx)
                .await?;
        }
        if let Some((key, value)) = state {
            put(&mut tx, key, value).await?;
        }
        if !records.is_empty() {
            self.bound(&mut tx).await?;
        }
        tx.commit().await?;
        if !records.is_empty() || unsaved > 0 {
            self.written.notify_one();
        }
        Ok(())
    }

    /// Keeps the spool within its bound: merge first, then drop the oldest and count them.
    /// The batch being uploaded is left alone and not counted (it is about to go), so the
    /// spool can exceed its bound by one batch while an upload is under way.
    async fn bound(&self, tx: &mut Transaction<'_, Sqlite>) -> Result<()> {
        let sending = self.sending();
        if count(tx, sending).await? <= self.max_records {
            return Ok(());
        }
        let merged = merge(tx, sending).await?;
        let over = count(tx, sending).await? - self.max_records;
        if over > 0 {
            sqlx::query(
                "DELETE FROM spool WHERE id IN (SELECT id FROM spool
                 WHERE id NOT BETWEEN $2 AND $3 ORDER BY id LIMIT $1)",
            )
            .bind(over)
            .bind(sending.0)
            .bind(sending.1)
            .execute(&mut **tx)
            .await?;
            add_dropped(tx, over).await?;
        }
        tracing::warn!(
            merged,
            dropped = over.max(0),
            max = self.max_records,
            "the spool is full"
        );
        Ok(())
    }

    /// The id range being uploaded; an empty range when none is.
    fn sending(&self) -> (i64, i64) {
        self.sending.lock().expect("spool lock").unwrap_or((1, 0))
    }

    /// Marks the end of an upload attempt: the bound may merge and drop any record again.
    pub fn sent(&self) {
        *self.sending.lock().expect("spool lock") = None;
    }

    /// Saves one state value.
    pub async fn put_state(&self, key: &str, value: &str) -> Result<()> {
        self.push(&[], Some((key, value))).await
    }

    pub async fn state(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM state WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The oldest records, at most `limit`, with the id range that names them as a batch.
    /// Records that do not pass the wire format's own checks are moved aside first (see
    /// [`Spool::reject`]); they would be refused forever and block everything behind them.
    pub async fn peek(&self, limit: i64) -> Result<Option<Batch>> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, record FROM spool ORDER BY id LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        let (Some(first), Some(last)) = (rows.first().map(|r| r.0), rows.last().map(|r| r.0))
        else {
            return Ok(None);
        };
        *self.sending.lock().expect("spool lock") = Some((first, last));
        let mut records = Vec::with_capacity(rows.len());
        // The server checks times against its clock; the agent's is the best guess of it.
        let now = chrono::Utc::now();
        for (id, json) in rows {
            let checked = serde_json::from_str::<UsageRecordV1>(&json)
                .map_err(|e| e.to_string())
                .and_then(|r| r.validate(now).map(|()| r).map_err(|e| e.to_string()));
            match checked {
                Ok(r) => records.push(r),
                Err(reason) => self.reject(id, &reason).await?,
            }
        }
        Ok(Some(Batch {
            first,
            last,
            records,
        }))
    }

    /// Moves a record the server will never accept out of the spool into `rejected`, where it
    /// stays for inspection, and counts it as dropped so the server hears of it.
    pub async fn reject(&self, id: i64, reason: &str) -> Result<()> {
        tracing::error!(id, reason, "a usage record was refused; it is kept in the spool's rejected table and reported as dropped");
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO rejected (id, record, reason, at)
             SELECT id, record, $2, $3 FROM spool WHERE id = $1",
        )
        .bind(id)
        .bind(reason)
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&mut *tx)
        .await?;
        let gone = sqlx::query("DELETE FROM spool WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        add_dropped(&mut tx, gone.rows_affected() as i64).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets records the server acknowledged, and the dropped count it was told of.
    pub async fn ack(&self, first: i64, last: i64, dropped_reported: u64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM spool WHERE id BETWEEN $1 AND $2")
            .bind(first)
            .bind(last)
            .execute(&mut *tx)
            .await?;
        add_dropped(&mut tx, -(dropped_reported as i64)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records dropped or rejected that the server has not been told of yet.
    pub async fn dropped(&self) -> Result<u64> {
        Ok(self
            .state("dropped")
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    pub async fn len(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM spool")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn rejected(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM rejected")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// Brings the spool's schema to [`SCHEMA_VERSION`], one step at a time, each step in the
/// same transaction as the version it sets. A spool from a newer agent is refused rather than
/// misread.
async fn migrate(pool: &SqlitePool) -> Result<()> {
    let mut version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(pool)
        .await?;
    if version > SCHEMA_VERSION {
        return Err(SpoolError::Newer { version });
    }
    while version < SCHEMA_VERSION {
        let mut tx = pool.begin().await?;
        match version {
            0 => to_v1(&mut tx).await?,
            _ => unreachable!("every version below SCHEMA_VERSION has a step"),
        }
        version += 1;
        // A pragma takes no bound parameters; `version` is a number this function counts.
        let pragma = format!("PRAGMA user_version = {version}");
        sqlx::query(&pragma).execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(version, "spool schema upgraded");
    }
    Ok(())
}

/// Version 0 is every spool written before versions: a new file, the current tables, or
/// tables from before records carried their instance (the column is added).
async fn to_v1(tx: &mut Transaction<'_, Sqlite>) -> Result<()> {
    // One statement at a time: `raw_sql` on a transaction makes the future's `Send` unprovable
    // where the agent is spawned.
    for statement in SCHEMA.split(';').filter(|s| !s.trim().is_empty()) {
        sqlx::query(statement).execute(&mut **tx).await?;
    }
    let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('spool')")
        .fetch_all(&mut **tx)
        .await?;
    if !columns.iter().any(|c| c == "instance") {
        sqlx::query("ALTER TABLE spool ADD COLUMN instance TEXT NOT NULL DEFAULT ''")
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("CREATE INDEX IF NOT EXISTS spool_instance ON spool (instance)")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn put(tx: &mut Transaction<'_, Sqlite>, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO state (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records outside the `sending` id range.
async fn count(tx: &mut Transaction<'_, Sqlite>, sending: (i64, i64)) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM spool WHERE id NOT BETWEEN $1 AND $2")
            .bind(sending.0)
            .bind(sending.1)
            .fetch_one(&mut **tx)
            .await?,
    )
}

async fn add_dropped(tx: &mut Transaction<'_, Sqlite>, n: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO state (key, value) VALUES ('dropped', MAX($1, 0))
         ON CONFLICT (key) DO UPDATE SET value = MAX(CAST(value AS INTEGER) + $1, 0)",
    )
    .bind(n)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Merges, for every instance with several spooled records, each run of records whose periods
/// join into one record. Returns how many records were saved.
async fn merge(tx: &mut Transaction<'_, Sqlite>, sending: (i64, i64)) -> Result<i64> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, instance, record FROM spool
         WHERE instance IN (SELECT instance FROM spool GROUP BY instance HAVING COUNT(*) > 1)
           AND id NOT BETWEEN $1 AND $2
         ORDER BY instance, id",
    )
    .bind(sending.0)
    .bind(sending.1)
    .fetch_all(&mut **tx)
    .await?;
    let mut saved = 0;
    let mut group: Vec<(i64, UsageRecordV1)> = Vec::new();
    for (id, instance, json) in rows {
        let record: UsageRecordV1 = serde_json::from_str(&json)?;
        let joins = group.last().is_some_and(|(_, prev)| {
            prev.meter_data_id == instance
                && prev.still_running
                && prev.end_time == record.start_time
        });
        if !joins {
            saved += replace(tx, &mut group).await?;
        }
        group.push((id, record));
    }
    saved += replace(tx, &mut group).await?;
    Ok(saved)
}

/// Replaces a run of joined records with their merge; a run of one is left alone.
async fn replace(
    tx: &mut Transaction<'_, Sqlite>,
    group: &mut Vec<(i64, UsageRecordV1)>,
) -> Result<i64> {
    let run = std::mem::take(group);
    if run.len() < 2 {
        return Ok(0);
    }
    let merged = merged(run.iter().map(|(_, r)| r));
    for (id, _) in &run {
        sqlx::query("DELETE FROM spool WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("INSERT INTO spool (instance, record) VALUES ($1, $2)")
        .bind(&merged.meter_data_id)
        .bind(serde_json::to_string(&merged)?)
        .execute(&mut **tx)
        .await?;
    Ok(run.len() as i64 - 1)
}

/// One record covering consecutive periods of one instance: the first one's start and flags
/// about the start, the last one's end and flags about the end.
pub fn merged<'a>(mut run: impl Iterator<Item = &'a UsageRecordV1>) -> UsageRecordV1 {
    let mut merged = run.next().expect("a run has records").clone();
    for r in run {
        merged.end_time = r.end_time;
        merged.end_time_offset = r.end_time_offset;
        merged.still_running = r.still_running;
        merged.end_not_captured = r.end_not_captured;
    }
    merged
}

#[cfg(test)]
mod tests;
