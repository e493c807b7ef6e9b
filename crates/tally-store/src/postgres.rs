//! The server backend: PostgreSQL, shared by any number of stateless Tally replicas.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::schema::{migrate, SchemaVersion};
use crate::shared::impl_store;
use crate::Result;

/// Tally's storage in a PostgreSQL database.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub(crate) const MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

    /// Connects and brings the schema up to date. Replicas starting at once are safe: sqlx
    /// holds an advisory lock while migrating.
    pub async fn open(url: &str) -> Result<Self> {
        let store = Self::open_unmigrated(url).await?;
        store.migrate_with(&Self::MIGRATOR).await?;
        Ok(store)
    }

    pub async fn open_unmigrated(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    pub async fn migrate_with(&self, migrator: &Migrator) -> Result<SchemaVersion> {
        let mut conn = self.pool.acquire().await?;
        migrate(&mut *conn, migrator).await
    }

    pub fn migrator() -> &'static Migrator {
        &Self::MIGRATOR
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool so the database can be dropped (tests).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl_store!(PgStore, sqlx::Postgres, "postgres");
crate::licensing::impl_licensing!(PgStore, sqlx::Postgres, "BEGIN");
