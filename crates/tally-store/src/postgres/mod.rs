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

/// The advisory lock (`pg_advisory_xact_lock(int, int)`) every usage write holds shared while it
/// takes and uses a `TimeSerial`; a reader takes it exclusively, for a moment, to learn which
/// serials have settled. (The task locks use first key 0x7A11.)
const SERIAL_GATE: (i32, i32) = (0x7A12, 0);

/// A new `TimeSerial` for the calling write transaction, from a sequence: concurrent uploads
/// each take one without waiting for each other (a counter row would serialise them until
/// commit). Serials then no longer follow commit order; [`settled_time_serial`] makes up for
/// that on the read side.
async fn take_time_serial(tx: &mut sqlx::Transaction<'_, Db>) -> Result<i64> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1, $2)")
        .bind(SERIAL_GATE.0)
        .bind(SERIAL_GATE.1)
        .execute(&mut **tx)
        .await?;
    Ok(sqlx::query_scalar("SELECT nextval('usage_time_serial')")
        .fetch_one(&mut **tx)
        .await?)
}

/// The newest `TimeSerial` no write can still be using. The sequence's last value is read
/// first; every write that took a serial up to it holds the gate shared from before it took
/// the serial until it ends, so once the gate is had exclusively (and let go at once), all of
/// them have committed or rolled back, and no later write gets a serial that low.
async fn settled_time_serial(pool: &PgPool) -> Result<i64> {
    let mut tx = pool.begin().await?;
    let last: i64 = sqlx::query_scalar("SELECT last_value FROM usage_time_serial")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(SERIAL_GATE.0)
        .bind(SERIAL_GATE.1)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(last)
}

/// The newest `TimeSerial` handed out, settled or not: the sequence's last value, without the
/// gate (a write may still be using it).
async fn newest_time_serial(pool: &PgPool) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT last_value FROM usage_time_serial")
            .fetch_one(pool)
            .await?,
    )
}

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
