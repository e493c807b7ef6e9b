//! The audit log.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;

use super::DbStore;

#[async_trait]
impl crate::AuditStore for DbStore {
    async fn append_audit(&self, entry: &tally_core::AuditEntry) -> crate::Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tally_core::to_micros(entry.at))
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_log(
        &self,
        page: crate::Page,
    ) -> crate::Result<Vec<(i64, tally_core::AuditEntry)>> {
        Ok(sqlx::query_as::<_, crate::rows::AuditRow>(
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
