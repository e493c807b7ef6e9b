//! The audit log.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use tally_core::to_micros;

use super::DbStore;
use crate::rows;
use crate::Result;

#[async_trait]
impl crate::AuditStore for DbStore {
    async fn append_audit(&self, entry: &tally_core::AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(to_micros(entry.at))
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_log(&self, page: crate::Page) -> Result<Vec<(i64, tally_core::AuditEntry)>> {
        Ok(sqlx::query_as::<_, rows::AuditColumns>(
            "SELECT * FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(page.after)
        .bind(page.limit)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| r.into_entry())
        .collect())
    }
}
