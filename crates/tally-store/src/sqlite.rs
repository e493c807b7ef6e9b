//! The embedded backend: one SQLite file, WAL journal, foreign keys enforced.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::schema::{migrate, SchemaVersion};
use crate::shared::impl_store;
use crate::{Result, StoreError};

/// Tally's storage in a SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
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
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives process crashes; a power cut can lose the last
            // commits but never corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// Applies the given migrations (all of Tally's unless a test passes fewer).
    pub async fn migrate_with(&self, migrator: &Migrator) -> Result<SchemaVersion> {
        let mut conn = self.pool.acquire().await?;
        migrate(&mut *conn, migrator).await
    }

    /// All migrations this binary ships.
    pub fn migrator() -> &'static Migrator {
        &Self::MIGRATOR
    }

    /// The underlying pool, for tests that need to inspect or tamper with the database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl_store!(SqliteStore, sqlx::Sqlite, "sqlite");
crate::licensing::impl_licensing!(SqliteStore, sqlx::Sqlite, "BEGIN IMMEDIATE");
