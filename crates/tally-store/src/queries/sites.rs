//! Sites, devices, users and files.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::to_micros;

use super::{Db, DbStore};
use crate::rows;
use crate::Result;

/// Rows of device `from` that device `into` already has (by the columns of `key`) are
/// dropped, then the rest of `table` moves to `into`; how many moved.
async fn move_rows(
    tx: &mut sqlx::Transaction<'_, Db>,
    table: &str,
    key: &[&str],
    (from, into): (i64, i64),
) -> Result<u64> {
    if !key.is_empty() {
        let same: Vec<String> = key.iter().map(|c| format!("o.{c} = {table}.{c}")).collect();
        let sql = format!(
            "DELETE FROM {table} WHERE device_id = $1 AND EXISTS (
                 SELECT 1 FROM {table} o WHERE o.device_id = $2 AND {})",
            same.join(" AND ")
        );
        sqlx::query(&sql)
            .bind(from)
            .bind(into)
            .execute(&mut **tx)
            .await?;
    }
    let sql = format!("UPDATE {table} SET device_id = $1 WHERE device_id = $2");
    let moved = sqlx::query(&sql)
        .bind(into)
        .bind(from)
        .execute(&mut **tx)
        .await?;
    Ok(moved.rows_affected())
}

/// Moves every row that hangs on device `from` to `into`, counting what moved in `merged`.
async fn move_device_rows(
    tx: &mut sqlx::Transaction<'_, Db>,
    pair: (i64, i64),
    at: DateTime<Utc>,
    merged: &mut tally_core::device::MergedDevices,
) -> Result<()> {
    let (from, into) = pair;
    merged.usage_records =
        move_rows(tx, "usage_records", &["meter_data_id", "end_time"], pair).await?;
    move_rows(tx, "usage_batches", &["batch_id"], pair).await?;
    merged.usage_sessions = move_rows(tx, "usage_sessions", &[], pair).await?;
    merged.agents = move_rows(tx, "agents", &[], pair).await?;
    move_rows(tx, "software_executables", &["file_name"], pair).await?;
    move_rows(tx, "local_accounts", &["name"], pair).await?;
    // A package both list stays one current installation: `from`'s becomes history, ended
    // by the merge.
    sqlx::query(
        "UPDATE installed_software SET removed_at = $3
         WHERE device_id = $1 AND removed_at IS NULL AND name IN (
             SELECT name FROM installed_software WHERE device_id = $2 AND removed_at IS NULL)",
    )
    .bind(from)
    .bind(into)
    .bind(to_micros(at))
    .execute(&mut **tx)
    .await?;
    merged.installations = move_rows(tx, "installed_software", &[], pair).await?;
    // Monthly summaries add up per rule, user and month.
    sqlx::query(
        "INSERT INTO monthly_usage (rule_id, device_id, user_id, month, runs, usage_ms, last_used)
         SELECT rule_id, $1, user_id, month, runs, usage_ms, last_used
         FROM monthly_usage WHERE device_id = $2
         ON CONFLICT (rule_id, device_id, user_id, month) DO UPDATE SET
             runs = monthly_usage.runs + excluded.runs,
             usage_ms = monthly_usage.usage_ms + excluded.usage_ms,
             last_used = CASE WHEN excluded.last_used > monthly_usage.last_used
                 THEN excluded.last_used ELSE monthly_usage.last_used END",
    )
    .bind(into)
    .bind(from)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM monthly_usage WHERE device_id = $1")
        .bind(from)
        .execute(&mut **tx)
        .await?;
    merged.licenses = sqlx::query(
        "UPDATE licenses SET assigned_to = $1 WHERE assignment_type = 'computer'
             AND assigned_to = $2",
    )
    .bind(into)
    .bind(from)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(())
}

/// `into` takes what it lacks from `from` (placement, identity), reads its next inventory in
/// full (it may now list packages only `from` had); `from` and its status history go, and the
/// audit entry is committed with it all.
async fn audit_merge_and_delete(
    mut tx: sqlx::Transaction<'_, Db>,
    (from, into): (i64, i64),
    audit: crate::AuditOf<'_, tally_core::device::MergedDevices>,
    merged: &tally_core::device::MergedDevices,
) -> Result<()> {
    sqlx::query(
        "UPDATE devices SET inventory_hash = NULL,
             org_node = COALESCE(org_node, (SELECT org_node FROM devices WHERE id = $1)),
             serial = COALESCE(serial, (SELECT serial FROM devices WHERE id = $1)),
             machine_id = COALESCE(machine_id, (SELECT machine_id FROM devices WHERE id = $1))
         WHERE id = $2",
    )
    .bind(from)
    .bind(into)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM status_changes WHERE subject = 'device' AND subject_id = $1")
        .bind(from)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM devices WHERE id = $1")
        .bind(from)
        .execute(&mut *tx)
        .await?;
    super::audit::commit_of(tx, audit, merged).await
}

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
        let sql = "SELECT * FROM sites ORDER BY code";
        super::all_rows(self, sql, rows::SiteColumns::into_site).await?
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
            .bind(None::<String>)
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
        super::page_of(self, "devices", page, rows::DeviceColumns::into_device).await?
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
        // A new user takes the classification of the local account of its name that an
        // inventory reported most recently (root and daemons are service accounts from their
        // first usage on). DO UPDATE (not DO NOTHING) so RETURNING yields the id of an
        // existing row too; an existing user keeps its classification.
        let sql = format!(
            "WITH seen AS (
                 SELECT la.service_account, {reason} AS reason
                 FROM local_accounts la JOIN devices d ON d.id = la.device_id
                 WHERE la.name = $1
                 ORDER BY d.last_seen IS NULL, d.last_seen DESC, d.id DESC LIMIT 1)
             INSERT INTO users (account, full_name, service_account, service_account_derived,
                 service_account_reason)
             VALUES ($1, $2, COALESCE((SELECT service_account FROM seen), FALSE),
                 COALESCE((SELECT service_account FROM seen), FALSE),
                 (SELECT reason FROM seen))
             ON CONFLICT (account) DO UPDATE
                 SET full_name = COALESCE(excluded.full_name, users.full_name)
             RETURNING id",
            reason = super::inventory::ACCOUNT_REASON
        );
        let id: i64 = sqlx::query_scalar(&sql)
            .bind(account)
            .bind(full_name)
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    async fn users(&self, page: crate::Page) -> Result<Vec<tally_core::User>> {
        super::page_of(self, "users", page, rows::UserColumns::into_user).await?
    }

    async fn users_classified_by_admin(&self) -> Result<Vec<tally_core::User>> {
        let sql = "SELECT * FROM users WHERE service_account_override IS NOT NULL ORDER BY id";
        super::all_rows(self, sql, rows::UserColumns::into_user).await?
    }

    async fn set_service_account(
        &self,
        account: &str,
        choice: Option<bool>,
        audit: crate::AuditOf<'_, tally_core::User>,
    ) -> Result<Option<tally_core::User>> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let user = sqlx::query_as::<_, rows::UserColumns>(
            "UPDATE users SET service_account_override = $1,
                 service_account = COALESCE($1, service_account_derived),
                 service_account_set_by = NULL
             WHERE account = $2 RETURNING *",
        )
        .bind(choice)
        .bind(account)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user) = user else { return Ok(None) };
        let user = user.into_user()?;
        super::audit::commit_of(tx, audit, &user).await?;
        Ok(Some(user))
    }

    async fn set_device_status(
        &self,
        id: i64,
        status: tally_core::DeviceStatus,
        at: DateTime<Utc>,
        audit: crate::AuditOf<'_, tally_core::Device>,
    ) -> Result<Option<tally_core::Device>> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let old: Option<String> = sqlx::query_scalar("SELECT status FROM devices WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(old) = old else { return Ok(None) };
        if old != status.as_str() {
            sqlx::query(
                "INSERT INTO status_changes (subject, subject_id, old_status, changed_at)
                 VALUES ('device', $1, $2, $3)",
            )
            .bind(id)
            .bind(&old)
            .bind(to_micros(at))
            .execute(&mut *tx)
            .await?;
        }
        let device = sqlx::query_as::<_, rows::DeviceColumns>(
            "UPDATE devices SET status = $1 WHERE id = $2 RETURNING *",
        )
        .bind(status.as_str())
        .bind(id)
        .fetch_one(&mut *tx)
        .await?
        .into_device()?;
        super::audit::commit_of(tx, audit, &device).await?;
        Ok(Some(device))
    }

    async fn merge_devices(
        &self,
        from: i64,
        into: i64,
        at: DateTime<Utc>,
        audit: crate::AuditOf<'_, tally_core::device::MergedDevices>,
    ) -> Result<Option<tally_core::device::MergedDevices>> {
        // Reads both devices before it writes: take the write lock at the start.
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let hosts: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, host_name FROM devices WHERE id IN ($1, $2)")
                .bind(from)
                .bind(into)
                .fetch_all(&mut *tx)
                .await?;
        let host = |id: i64| hosts.iter().find(|(i, _)| *i == id).map(|(_, h)| h.clone());
        let (Some(from_host_name), Some(into_host_name)) = (host(from), host(into)) else {
            return Ok(None);
        };
        let mut merged = tally_core::device::MergedDevices {
            from_id: from,
            from_host_name,
            into_id: into,
            into_host_name,
            ..Default::default()
        };
        move_device_rows(&mut tx, (from, into), at, &mut merged).await?;
        audit_merge_and_delete(tx, (from, into), audit, &merged).await?;
        Ok(Some(merged))
    }

    async fn forget_user(
        &self,
        account: &str,
        audit: crate::AuditOf<'_, crate::Forgotten>,
    ) -> Result<crate::Forgotten> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
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
        super::page_of(self, "files", page, rows::FileColumns::into_file).await
    }
}
