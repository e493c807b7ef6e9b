//! The reclaim campaign's list.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::compliance::Money;
use tally_core::reclaim::{NewReclaimItem, ReclaimItem, ReclaimState, ReclaimStep};
use tally_core::to_micros;

use super::DbStore;
use crate::{AuditNote, AuditOf, Result, StoreError};

const COLUMNS: &str = "id, application, device_id, host_name, units, cost_minor, currency, \
     license, state, proposed_at, proposed_by, confirmed_at, confirmed_by, removed_at, removed_by";

/// A row in the order of [`COLUMNS`].
type ItemRow = (
    i64,
    String,
    i64,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    String,
    DateTime<Utc>,
    String,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
);

fn step(at: Option<DateTime<Utc>>, by: Option<String>) -> Option<ReclaimStep> {
    Some(ReclaimStep { at: at?, by: by? })
}

fn item_of(row: ItemRow) -> Result<ReclaimItem> {
    let (id, application, device_id, host_name, units, minor, currency, license, state, p_at, p_by) = (
        row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10,
    );
    let state = ReclaimState::parse(&state).ok_or(StoreError::Corrupt {
        column: "reclaim_items.state",
        value: state,
    })?;
    let cost = minor.map(|minor| Money {
        minor,
        currency: currency.unwrap_or_default(),
    });
    Ok(ReclaimItem {
        id,
        item: NewReclaimItem {
            application,
            device_id,
            host_name,
            units,
            cost,
            license,
        },
        state,
        proposed: ReclaimStep { at: p_at, by: p_by },
        confirmed: step(row.11, row.12),
        removed: step(row.13, row.14),
    })
}

#[async_trait]
impl crate::ReclaimStore for DbStore {
    async fn reclaim_items(&self) -> Result<Vec<ReclaimItem>> {
        let sql = format!("SELECT {COLUMNS} FROM reclaim_items ORDER BY proposed_at DESC, id DESC");
        let rows = sqlx::query_as::<_, ItemRow>(&sql)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(item_of).collect()
    }

    async fn propose_reclaim(
        &self,
        item: &NewReclaimItem,
        step: &ReclaimStep,
        audit: AuditOf<'_, ReclaimItem>,
    ) -> Result<ReclaimItem> {
        let sql = format!(
            "INSERT INTO reclaim_items (application, device_id, host_name, units, cost_minor,
                 currency, license, state, proposed_at, proposed_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'proposed', $8, $9) RETURNING {COLUMNS}"
        );
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let row = sqlx::query_as::<_, ItemRow>(&sql)
            .bind(&item.application)
            .bind(item.device_id)
            .bind(&item.host_name)
            .bind(item.units)
            .bind(item.cost.as_ref().map(|c| c.minor))
            .bind(item.cost.as_ref().map(|c| c.currency.clone()))
            .bind(&item.license)
            .bind(to_micros(step.at))
            .bind(&step.by)
            .fetch_one(&mut *tx)
            .await?;
        let stored = item_of(row)?;
        super::audit::commit_of(tx, audit, &stored).await?;
        Ok(stored)
    }

    async fn advance_reclaim(
        &self,
        id: i64,
        from: ReclaimState,
        step: &ReclaimStep,
        audit: AuditNote<'_>,
    ) -> Result<bool> {
        let Some(to) = from.next() else {
            return Ok(false);
        };
        // `to` is one of three fixed words, never input.
        let to = to.as_str();
        let sql = format!(
            "UPDATE reclaim_items SET state = $1, {to}_at = $2, {to}_by = $3
             WHERE id = $4 AND state = $5"
        );
        let query = sqlx::query(&sql)
            .bind(to)
            .bind(to_micros(step.at))
            .bind(&step.by)
            .bind(id)
            .bind(from.as_str());
        super::change_one(self, query, audit).await
    }
}
