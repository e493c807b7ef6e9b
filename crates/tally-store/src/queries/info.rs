//! The backend's name and schema version.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;

use super::DbStore;

#[async_trait]
impl crate::StoreInfo for DbStore {
    fn backend(&self) -> &'static str {
        super::NAME
    }

    async fn schema_version(&self) -> crate::Result<crate::SchemaVersion> {
        let mut conn = self.pool.acquire().await?;
        let database = crate::schema::current(&mut *conn).await?;
        Ok(crate::SchemaVersion {
            database,
            binary: crate::schema::newest(&Self::MIGRATOR),
        })
    }
}
