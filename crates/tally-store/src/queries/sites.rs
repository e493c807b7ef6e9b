//! Sites, devices, users and files.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::to_micros;

use super::DbStore;
use crate::rows;
use crate::Result;

#[async_trait]
impl crate::SiteStore for DbStore {
    async fn put_site(&self, site: &tally_core::Site) -> Result<()> {
        sqlx::query(
            "INSERT INTO sites (code, name, alias, parent) VALUES ($1, $2, $3, $4)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name,
                 alias = excluded.alias, parent = excluded.parent",
        )
        .bind(site.code.as_str())
        .bind(&site.name)
        .bind(&site.alias)
        .bind(site.parent.as_ref().map(|p| p.as_str()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn site(&self, code: &tally_core::SiteCode) -> Result<Option<tally_core::Site>> {
        sqlx::query_as::<_, rows::SiteColumns>("SELECT * FROM sites WHERE code = $1")
            .bind(code.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.into_site())
            .transpose()
    }

    async fn sites(&self) -> Result<Vec<tally_core::Site>> {
        sqlx::query_as::<_, rows::SiteColumns>("SELECT * FROM sites ORDER BY code")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| r.into_site())
            .collect()
    }

    async fn create_device(
        &self,
        device: &tally_core::device::NewDevice,
        at: DateTime<Utc>,
    ) -> Result<tally_core::Device> {
        sqlx::query_as::<_, rows::DeviceColumns>(rows::INSERT_DEVICE)
            .bind(device.site_code.as_str())
            .bind(&device.host_name)
            .bind(&device.fqdn)
            .bind(&device.os)
            .bind(&device.serial)
            .bind(to_micros(at))
            .fetch_one(&self.pool)
            .await?
            .into_device()
    }

    async fn device(&self, id: i64) -> Result<Option<tally_core::Device>> {
        sqlx::query_as::<_, rows::DeviceColumns>("SELECT * FROM devices WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.into_device())
            .transpose()
    }

    async fn devices(&self, page: crate::Page) -> Result<Vec<tally_core::Device>> {
        sqlx::query_as::<_, rows::DeviceColumns>(
            "SELECT * FROM devices WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(page.after)
        .bind(page.limit)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| r.into_device())
        .collect()
    }

    async fn touch_device(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE devices SET last_seen = $1 WHERE id = $2")
            .bind(to_micros(at))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn upsert_user(&self, account: &str, full_name: Option<&str>) -> Result<i64> {
        // DO UPDATE (not DO NOTHING) so RETURNING yields the id of an existing row too.
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (account, full_name) VALUES ($1, $2)
             ON CONFLICT (account) DO UPDATE
                 SET full_name = COALESCE(excluded.full_name, users.full_name)
             RETURNING id",
        )
        .bind(account)
        .bind(full_name)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn users(&self, page: crate::Page) -> Result<Vec<tally_core::User>> {
        sqlx::query_as::<_, rows::UserColumns>(
            "SELECT * FROM users WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(page.after)
        .bind(page.limit)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| r.into_user())
        .collect()
    }

    async fn forget_user(
        &self,
        account: &str,
        audit: crate::AuditOf<'_, crate::Forgotten>,
    ) -> Result<crate::Forgotten> {
        let mut tx = self.pool.begin().await?;
        let user_id: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET account = 'forgotten-' || id, full_name = NULL
             WHERE account = $1 RETURNING id",
        )
        .bind(account)
        .fetch_optional(&mut *tx)
        .await?;
        let local_accounts = sqlx::query("DELETE FROM local_accounts WHERE name = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let forgotten = crate::Forgotten {
            user_id,
            local_accounts,
        };
        let audit = audit.filter(|_| forgotten.anything());
        super::audit::commit_of(tx, audit, &forgotten).await?;
        Ok(forgotten)
    }

    async fn upsert_file(&self, file: &tally_core::FileInfo) -> Result<i64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO files (file_name, original_file_name, version, product_name, publisher, language)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (file_name, original_file_name, version, product_name, publisher, language)
             DO UPDATE SET file_name = excluded.file_name
             RETURNING id",
        )
        .bind(&file.file_name)
        .bind(&file.original_file_name)
        .bind(&file.version)
        .bind(&file.product_name)
        .bind(&file.publisher)
        .bind(file.language)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn files(&self, page: crate::Page) -> Result<Vec<tally_core::file::StoredFile>> {
        Ok(sqlx::query_as::<_, rows::FileColumns>(
            "SELECT * FROM files WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(page.after)
        .bind(page.limit)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| r.into_file())
        .collect())
    }
}
