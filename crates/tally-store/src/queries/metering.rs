//! The system-metering report's reads and writes.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::system_metering::{DeviceFact, StatusRelevance, UserFact};
use tally_core::{to_micros, DeviceStatus, UserStatus};

use super::DbStore;
use crate::{AuditNote, Result, StoreError};

fn corrupt(column: &'static str, value: String) -> StoreError {
    StoreError::Corrupt { column, value }
}

#[async_trait]
impl crate::MeteringStore for DbStore {
    async fn set_site_alias(
        &self,
        code: &tally_core::SiteCode,
        alias: Option<&str>,
        audit: AuditNote<'_>,
    ) -> Result<bool> {
        let query = sqlx::query("UPDATE sites SET alias = $1 WHERE code = $2")
            .bind(alias)
            .bind(code.as_str());
        super::change_one(self, query, audit).await
    }

    async fn status_relevance(&self) -> Result<Vec<StatusRelevance>> {
        let rows: Vec<(String, bool, bool, bool, bool)> = sqlx::query_as(
            "SELECT status, compliance, end_of_life, principal_user, help_desk
             FROM device_status_relevance",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut all = rows
            .into_iter()
            .map(|(s, compliance, end_of_life, principal_user, help_desk)| {
                let status = DeviceStatus::parse(&s)
                    .ok_or_else(|| corrupt("device_status_relevance.status", s))?;
                Ok(StatusRelevance {
                    status,
                    compliance,
                    end_of_life,
                    principal_user,
                    help_desk,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        all.sort_by_key(|r| DeviceStatus::ALL.iter().position(|s| *s == r.status));
        Ok(all)
    }

    async fn set_status_relevance(&self, r: &StatusRelevance, audit: AuditNote<'_>) -> Result<()> {
        let query = sqlx::query(
            "INSERT INTO device_status_relevance
                 (status, compliance, end_of_life, principal_user, help_desk)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (status) DO UPDATE SET compliance = excluded.compliance,
                 end_of_life = excluded.end_of_life, principal_user = excluded.principal_user,
                 help_desk = excluded.help_desk",
        )
        .bind(r.status.as_str())
        .bind(r.compliance)
        .bind(r.end_of_life)
        .bind(r.principal_user)
        .bind(r.help_desk);
        super::change_one(self, query, audit).await.map(|_| ())
    }

    async fn device_facts(&self) -> Result<Vec<DeviceFact>> {
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT status, management_type FROM devices")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(s, management_type)| {
                let status = DeviceStatus::parse(&s).ok_or_else(|| corrupt("devices.status", s))?;
                Ok(DeviceFact {
                    status,
                    management_type,
                })
            })
            .collect()
    }

    async fn user_facts(&self) -> Result<Vec<UserFact>> {
        type Row = (String, bool, Option<bool>, bool, bool);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT status, service_account, service_account_override, cannot_change_password,
                 COALESCE(TRIM(full_name), '') <> ''
             FROM users",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(
                |(s, classified, override_, cannot_change_password, named)| {
                    let status = UserStatus::parse(&s).ok_or_else(|| corrupt("users.status", s))?;
                    Ok(UserFact {
                        status,
                        classified_service: classified,
                        admin_override: override_,
                        cannot_change_password,
                        has_name: named,
                    })
                },
            )
            .collect()
    }

    async fn put_fingerprints(
        &self,
        device_id: i64,
        fingerprints: &[(String, String)],
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let at = to_micros(at);
        // It reads before it writes: take the write lock at the start (see BEGIN_WRITE).
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let current: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM installed_software
             WHERE device_id = $1 AND removed_at IS NULL AND source = 'certificate'",
        )
        .bind(device_id)
        .fetch_all(&mut *tx)
        .await?;
        for gone in current
            .iter()
            .filter(|n| !fingerprints.iter().any(|f| &f.0 == *n))
        {
            sqlx::query(
                "UPDATE installed_software SET removed_at = $1
                 WHERE device_id = $2 AND name = $3 AND removed_at IS NULL",
            )
            .bind(at)
            .bind(device_id)
            .bind(gone)
            .execute(&mut *tx)
            .await?;
        }
        for (name, publisher) in fingerprints {
            sqlx::query(
                "INSERT INTO installed_software (device_id, name, version, publisher,
                     installed_at, source) VALUES ($1, $2, '', $3, $4, 'certificate')
                 ON CONFLICT (device_id, name) WHERE removed_at IS NULL DO NOTHING",
            )
            .bind(device_id)
            .bind(name)
            .bind(publisher)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(fingerprints.len() as u64)
    }

    async fn set_compare_values(&self, values: &[(i64, i64)], audit: AuditNote<'_>) -> Result<()> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        for (application, quantity) in values {
            sqlx::query("DELETE FROM custom_values WHERE application_id = $1 AND org_node IS NULL")
                .bind(application)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO custom_values (application_id, org_node, quantity)
                 VALUES ($1, NULL, $2)",
            )
            .bind(application)
            .bind(quantity)
            .execute(&mut *tx)
            .await?;
        }
        super::audit::commit_with(tx, audit).await
    }
}
