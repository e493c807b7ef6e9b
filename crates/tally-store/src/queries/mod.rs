//! The queries both backends share, one file per aggregate, each implementing that aggregate's
//! trait. This module is compiled once under `sqlite/` and once under `postgres/`; `Db` and
//! `DbStore` (and the constants below) are the including backend's, so each query is written
//! once and type-checked against both databases.

use chrono::{DateTime, Utc};

use super::{
    newest_time_serial, settled_time_serial, take_time_serial, Db, DbStore, BEGIN_WRITE, NAME,
};
use crate::Result;

mod agents;
mod audit;
mod certificates;
mod export;
mod hierarchy;
mod import;
mod info;
mod inventory;
mod licensing;
mod metering;
mod reclaim;
mod rules;
mod sites;
mod summaries;
mod usage;
mod web_sessions;

#[allow(unused_imports)] // each backend uses what it needs
pub(super) use usage::usage_rows;

/// Every row `sql` selects, read as `C` and converted by `convert`: the reads that list a whole
/// table. `R` is what the caller collects into: `Vec<T>`, or `Result<Vec<T>>` where a stored
/// value can fail to convert.
async fn all_rows<C, T, R>(store: &DbStore, sql: &str, convert: impl FnMut(C) -> T) -> Result<R>
where
    C: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
    R: FromIterator<T>,
{
    let rows = sqlx::query_as::<_, C>(sql).fetch_all(&store.pool).await?;
    Ok(rows.into_iter().map(convert).collect())
}

/// One page of `table` in id order (ids after `page.after`, at most `page.limit`), read and
/// converted as [`all_rows`] does.
async fn page_of<C, T, R>(
    store: &DbStore,
    table: &str,
    page: crate::Page,
    convert: impl FnMut(C) -> T,
) -> Result<R>
where
    C: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
    R: FromIterator<T>,
{
    let sql = format!("SELECT * FROM {table} WHERE id > $1 ORDER BY id LIMIT $2");
    let rows = sqlx::query_as::<_, C>(&sql)
        .bind(page.after)
        .bind(page.limit)
        .fetch_all(&store.pool)
        .await?;
    Ok(rows.into_iter().map(convert).collect())
}

/// Narrows a query to the devices of `sites` (a parent's `--site`): appends
/// ` AND {column} IN (SELECT id FROM devices WHERE site_code IN (…))`; nothing when `sites` is
/// `None` (the whole subtree the site holds).
fn push_sites(
    sql: &mut sqlx::QueryBuilder<'_, Db>,
    column: &str,
    sites: Option<&[tally_core::SiteCode]>,
) {
    let Some(sites) = sites else { return };
    if sites.is_empty() {
        sql.push(" AND 1 = 0");
        return;
    }
    sql.push(format!(
        " AND {column} IN (SELECT id FROM devices WHERE site_code IN ("
    ));
    let mut list = sql.separated(", ");
    for s in sites {
        list.push_bind(s.as_str().to_string());
    }
    list.push_unseparated("))");
}

/// Every row `query` returns, as the domain type its row type converts into.
async fn fetch_into<'q, C, T>(
    store: &DbStore,
    query: sqlx::query::QueryAs<'q, Db, C, <Db as sqlx::Database>::Arguments<'q>>,
) -> Result<Vec<T>>
where
    C: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin + Into<T>,
{
    let rows = query.fetch_all(&store.pool).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Runs `query`, an update or delete of one row, and commits it with `audit` when it found its
/// row; false (and nothing written) when it did not.
async fn change_one<'q>(
    store: &DbStore,
    query: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>,
    audit: crate::AuditNote<'_>,
) -> Result<bool> {
    let mut tx = store.pool.begin_with(BEGIN_WRITE).await?;
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
