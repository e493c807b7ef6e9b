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
mod rules;
mod sites;
mod summaries;
mod usage;

/// Deletes the row `id` of `table`; false when there was none.
async fn delete_by_id(store: &DbStore, table: &str, id: i64) -> Result<bool> {
    let done = sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
        .bind(id)
        .execute(&store.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Marks the row `id` of `table` revoked at `at`; false when there is no such row not revoked
/// already.
async fn revoke_by_id(store: &DbStore, table: &str, id: i64, at: DateTime<Utc>) -> Result<bool> {
    let sql = format!("UPDATE {table} SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL");
    let done = sqlx::query(&sql)
        .bind(tally_core::to_micros(at))
        .bind(id)
        .execute(&store.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
