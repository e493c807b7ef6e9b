//! The audit log.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use tally_core::to_micros;

use super::{Db, DbStore};
use crate::rows;
use crate::Result;

/// Writes `entry` in `tx` and commits: the change `tx` made and its audit entry are stored
/// together, or, when the entry cannot be written, neither is.
pub(super) async fn commit_with(
    mut tx: sqlx::Transaction<'_, Db>,
    entry: Option<&tally_core::AuditEntry>,
) -> Result<()> {
    if let Some(entry) = entry {
        insert(&mut *tx, entry).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Commits `tx` with the entry `audit` builds from `row`, the row the change stored.
pub(super) async fn commit_of<T>(
    tx: sqlx::Transaction<'_, Db>,
    audit: crate::AuditOf<'_, T>,
    row: &T,
) -> Result<()> {
    commit_with(tx, audit.map(|entry_of| entry_of(row)).as_ref()).await
}

async fn insert<'c, E>(conn: E, entry: &tally_core::AuditEntry) -> Result<()>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(to_micros(entry.at))
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(&entry.detail)
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl crate::AuditStore for DbStore {
    async fn append_audit(&self, entry: &tally_core::AuditEntry) -> Result<()> {
        insert(&self.pool, entry).await
    }

    async fn audit_log(&self, page: crate::Page) -> Result<Vec<(i64, tally_core::AuditEntry)>> {
        super::page_of(self, "audit_log", page, rows::AuditColumns::into_entry).await
    }
}
