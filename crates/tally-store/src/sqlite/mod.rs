//! The embedded backend: one SQLite file, WAL journal, foreign keys enforced.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use chrono::{DateTime, Utc};
use tally_core::sessions::UsageSession;

use crate::{Result, StoreError};

/// The sqlx database the shared queries (`../queries/`) are compiled against here.
type Db = sqlx::Sqlite;
/// The store type the shared queries implement the traits on here.
type DbStore = SqliteStore;
/// [`crate::StoreInfo::backend`].
const NAME: &str = "sqlite";
/// Opens a transaction that will write: SQLite takes the write lock at once, so a transaction
/// that reads first cannot fail later because another connection wrote in between.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// A new `TimeSerial` for the calling write transaction. SQLite has one writer at a time, so
/// the counter row costs nothing to hold and serials follow commit order.
async fn take_time_serial(tx: &mut sqlx::Transaction<'_, Db>) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "UPDATE counters SET value = value + 1 WHERE name = 'time_serial' RETURNING value",
    )
    .fetch_one(&mut **tx)
    .await?)
}

/// The newest `TimeSerial` no write can still be using: with one writer, the counter itself.
async fn settled_time_serial(pool: &SqlitePool) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT value FROM counters WHERE name = 'time_serial'")
            .fetch_one(pool)
            .await?,
    )
}

/// The newest `TimeSerial` handed out: with one writer, the settled one.
async fn newest_time_serial(pool: &SqlitePool) -> Result<i64> {
    settled_time_serial(pool).await
}

#[path = "../queries/mod.rs"]
mod queries;

mod backup;
mod private;
mod usage_text;

/// Tally's storage in a SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    running: crate::task_lock::Running,
}

/// Whether a connection going back to the pool may stay in it: not while a transaction is open
/// on it. sqlx runs a custom `BEGIN` (ours is `BEGIN IMMEDIATE`, which takes the write lock) and
/// only then builds the `Transaction` that rolls back when dropped; a request cancelled between
/// the two (its client gone, its timeout reached) left the transaction open on an idle pooled
/// connection, holding SQLite's write lock, and every other write waited out the busy timeout
/// and failed. Such a connection is closed instead, which rolls the transaction back. Only then
/// is the worker pinged, to let a rollback a dropped `Transaction` queued finish first: the
/// common release costs one atomic read, not a round trip to the connection's thread.
async fn closes_an_open_transaction(conn: &mut sqlx::SqliteConnection) -> sqlx::Result<bool> {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    Ok(!conn.is_in_transaction())
}

impl SqliteStore {
    pub(crate) const MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

    /// Opens (creating if missing) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let store = Self::open_unmigrated(path).await?;
        store.migrate_with(&Self::MIGRATOR).await?;
        Ok(store)
    }

    /// Opens the file without migrating, for tests that build an older schema first.
    pub async fn open_unmigrated(path: &Path) -> Result<Self> {
        private::create(path)?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: in WAL mode every commit syncs the WAL before it returns, so an ingest
            // batch acknowledged to an agent (which then deletes it from its spool) survives a
            // power cut. NORMAL would survive only a crash of the process. BENCHMARKS.md has
            // the cost.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .after_release(|conn, _| Box::pin(closes_an_open_transaction(conn)))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            running: Default::default(),
        })
    }

    pub(crate) async fn task_lock(&self, name: &str) -> Result<Option<crate::TaskLock>> {
        Ok(self.running.lock(name))
    }
}

impl SqliteStore {
    /// The summarisers' reads of raw usage, a text per page (`usage_text`).
    pub(crate) async fn read_usage(
        &self,
        filter: &crate::usage::UsageFilter,
    ) -> Result<Vec<tally_core::UsageRecord>> {
        self.usage_as_text(filter).await
    }
}

/// Compliance reads millions of small rows, and sqlx's SQLite driver pays a few microseconds
/// per row (a worker thread hands each one over); these queries return one text per title or
/// application instead, which is parsed here.
impl SqliteStore {
    pub(crate) async fn title_devices(
        &self,
        (name, publisher, version): (&str, &str, &str),
        on: DateTime<Utc>,
    ) -> Result<Vec<i64>> {
        let ids: Option<String> = sqlx::query_scalar(&format!(
            "SELECT group_concat(device_id) FROM installed_software
             WHERE name = $2 AND publisher = $3 AND version = $4 AND {}",
            crate::licensing::INSTALLED_ON
        ))
        .bind(tally_core::to_micros(on))
        .bind(name)
        .bind(publisher)
        .bind(version)
        .fetch_one(&self.pool)
        .await?;
        let ids = ids.unwrap_or_default();
        ids.split(',')
            .filter(|i| !i.is_empty())
            .map(|i| corrupt_unless("installed_software.device_id", i, i.parse().ok()))
            .collect()
    }

    pub(crate) async fn application_sessions(
        &self,
        application_id: i64,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Vec<UsageSession>> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT group_concat(device_id || ',' || user_id || ',' || start_time || ',' || end_time, ';')
             FROM usage_sessions
             WHERE application_id = $1 AND end_time >= $2 AND start_time < $3",
        )
        .bind(application_id)
        .bind(tally_core::to_micros(from))
        .bind(tally_core::to_micros(to))
        .fetch_one(&self.pool)
        .await?;
        let text = text.unwrap_or_default();
        text.split(';')
            .filter(|s| !s.is_empty())
            .map(|s| session(application_id, s))
            .collect()
    }
}

fn corrupt_unless<T>(column: &'static str, value: &str, parsed: Option<T>) -> Result<T> {
    parsed.ok_or_else(|| StoreError::Corrupt {
        column,
        value: value.to_string(),
    })
}

/// `device,user,start,end` with RFC 3339 times, as the query above writes it.
fn session(application_id: i64, text: &str) -> Result<UsageSession> {
    let mut parts = text.splitn(4, ',');
    let mut next = || parts.next().unwrap_or_default();
    let (device, user, start, end) = (next(), next(), next(), next());
    let time = |t: &str| {
        let parsed = DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        corrupt_unless("usage_sessions.start_time/end_time", t, parsed)
    };
    Ok(UsageSession {
        application_id,
        device_id: corrupt_unless("usage_sessions.device_id", device, device.parse().ok())?,
        user_id: corrupt_unless("usage_sessions.user_id", user, user.parse().ok())?,
        start_time: time(start)?,
        end_time: time(end)?,
    })
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;

    /// "Acknowledged" means durable: every connection of the pool syncs the WAL at each commit
    /// (`synchronous = FULL`, 2), not only at checkpoints (NORMAL, 1).
    #[tokio::test]
    async fn every_connection_syncs_each_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut conn = store.pool.acquire().await.unwrap();
            let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(level, 2, "synchronous = FULL");
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            held.push(conn);
        }
    }
}
