//! The queries both backends share, one file per aggregate, each implementing that aggregate's
//! trait. This module is compiled once under `sqlite/` and once under `postgres/`; `Db` and
//! `DbStore` (and the constants below) are the including backend's, so each query is written
//! once and type-checked against both databases.

use chrono::{DateTime, Utc};

use super::{Db, DbStore, BEGIN_WRITE, NAME};
use crate::Result;

mod agents;
mod audit;
mod export;
mod import;
mod info;
mod inventory;
mod licensing;
mod reclaim;
mod rules;
mod sites;
mod summaries;
mod usage;
mod web_sessions;

/// Runs `query`, an update or delete of one row, and commits it with `audit` when it found its
/// row; false (and nothing written) when it did not.
async fn change_one<'q>(
    store: &DbStore,
    query: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>,
    audit: crate::AuditNote<'_>,
) -> Result<bool> {
    let mut tx = store.pool.begin().await?;
    if query.execute(&mut *tx).await?.rows_affected() == 0 {
        return Ok(false);
    }
    audit::commit_with(tx, audit).await?;
    Ok(true)
}

/// Deletes the row `id` of `table` with its audit entry; false when there was none.
async fn delete_by_id(
    store: &DbStore,
    table: &str,
    id: i64,
    audit: crate::AuditNote<'_>,
) -> Result<bool> {
    let sql = format!("DELETE FROM {table} WHERE id = $1");
    change_one(store, sqlx::query(&sql).bind(id), audit).await
}

/// Marks the row `id` of `table` revoked at `at`, with its audit entry; false when there is no
/// such row not revoked already.
async fn revoke_by_id(
    store: &DbStore,
    table: &str,
    row: (i64, DateTime<Utc>),
    audit: crate::AuditNote<'_>,
) -> Result<bool> {
    stamp_by_id(store, (table, "revoked_at"), row, audit).await
}

/// Sets the time `column` of the row `id` of `table` to `at`, with its audit entry, when it is
/// not set yet; false when there is no such row not stamped already. The row stays.
async fn stamp_by_id(
    store: &DbStore,
    (table, column): (&str, &str),
    (id, at): (i64, DateTime<Utc>),
    audit: crate::AuditNote<'_>,
) -> Result<bool> {
    let sql = format!("UPDATE {table} SET {column} = $1 WHERE id = $2 AND {column} IS NULL");
    let query = sqlx::query(&sql).bind(tally_core::to_micros(at)).bind(id);
    change_one(store, query, audit).await
}
