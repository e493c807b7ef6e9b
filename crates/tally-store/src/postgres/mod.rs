//! The server backend: PostgreSQL, shared by any number of stateless Tally replicas.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::Result;

/// The sqlx database the shared queries (`../queries/`) are compiled against here.
type Db = sqlx::Postgres;
/// The store type the shared queries implement the traits on here.
type DbStore = PgStore;
/// [`crate::StoreInfo::backend`].
const NAME: &str = "postgres";
/// Opens a transaction that will write (PostgreSQL's row locks need nothing more).
const BEGIN_WRITE: &str = "BEGIN";

#[path = "../queries/mod.rs"]
mod queries;

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

    pub(crate) async fn task_lock(&self, name: &str) -> Result<Option<crate::TaskLock>> {
        crate::task_lock::lock_postgres(&self.pool, name).await
    }

    /// Closes the pool so the database can be dropped (tests).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// PostgreSQL sends rows in binary, cheaply: compliance and the summarisers read them as
/// they are.
impl PgStore {
    pub(crate) async fn read_usage(
        &self,
        filter: &crate::usage::UsageFilter,
    ) -> Result<Vec<tally_core::UsageRecord>> {
        queries::usage_rows(self, filter).await
    }

    pub(crate) async fn title_devices(
        &self,
        (name, publisher, version): (&str, &str, &str),
        on: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT device_id FROM installed_software
             WHERE name = $2 AND publisher = $3 AND version = $4 AND {}",
            crate::licensing::INSTALLED_ON
        ))
        .bind(tally_core::to_micros(on))
        .bind(name)
        .bind(publisher)
        .bind(version)
        .fetch_all(&self.pool)
        .await?)
    }

    pub(crate) async fn application_sessions(
        &self,
        application_id: i64,
        (from, to): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
    ) -> Result<Vec<tally_core::sessions::UsageSession>> {
        let rows: Vec<crate::rows::SessionColumns> = sqlx::query_as(
            "SELECT application_id, device_id, user_id, start_time, end_time
             FROM usage_sessions
             WHERE application_id = $1 AND end_time >= $2 AND start_time < $3",
        )
        .bind(application_id)
        .bind(tally_core::to_micros(from))
        .bind(tally_core::to_micros(to))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
