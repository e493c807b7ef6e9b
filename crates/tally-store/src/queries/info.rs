//! The backend's name and schema version.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;

use super::DbStore;
use crate::Result;

#[async_trait]
impl crate::StoreInfo for DbStore {
    fn backend(&self) -> &'static str {
        super::NAME
    }

    async fn schema_version(&self) -> Result<crate::SchemaVersion> {
        let mut conn = self.pool.acquire().await?;
        let database = crate::schema::current(&mut *conn).await?;
        Ok(crate::SchemaVersion {
            database,
            binary: crate::schema::newest(&Self::MIGRATOR),
        })
    }

    fn schema_shipped(&self) -> i64 {
        crate::schema::newest(&Self::MIGRATOR)
    }

    fn pool_use(&self) -> crate::PoolUse {
        crate::PoolUse {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }
}

/// What both backends offer beyond the traits: migrations and, for tests, the pool.
impl DbStore {
    /// Applies the given migrations (all of Tally's unless a test passes fewer).
    pub async fn migrate_with(
        &self,
        migrator: &sqlx::migrate::Migrator,
    ) -> Result<crate::SchemaVersion> {
        let mut conn = self.pool.acquire().await?;
        crate::schema::migrate(&mut *conn, migrator).await
    }

    /// All migrations this binary ships.
    pub fn migrator() -> &'static sqlx::migrate::Migrator {
        &Self::MIGRATOR
    }

    /// The underlying pool, for tests that need to inspect or tamper with the database.
    pub fn pool(&self) -> &sqlx::Pool<super::Db> {
        &self.pool
    }
}
