//! Compliance snapshots read back as trends: each day's figures of an application, named.

use std::collections::HashMap;

use chrono::NaiveDate;
use tally_api::TrendPoint;
use tally_store::Store;

use crate::{Result, ServiceError};

/// How far back trends go when the caller names no first day.
pub const DEFAULT_DAYS: i64 = 90;

/// The daily snapshots from `from` (default [`DEFAULT_DAYS`] before `today`) of every
/// application, or of the one named `app` (any ASCII case), each with its application's name.
/// Removed applications keep their snapshots, so their names are read too.
pub async fn snapshots(
    store: &dyn Store,
    app: Option<&str>,
    from: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<Vec<TrendPoint>> {
    let names: HashMap<i64, String> = store
        .applications_on(chrono::DateTime::UNIX_EPOCH.date_naive())
        .await?
        .into_iter()
        .map(|a| (a.application.id, a.application.name))
        .collect();
    let app = match app {
        None => None,
        Some(name) => Some(
            names
                .iter()
                .find(|(_, n)| n.eq_ignore_ascii_case(name))
                .map(|(&id, _)| id)
                .ok_or_else(|| {
                    ServiceError::NotFound(format!("no application named {name:?}; see tally apps"))
                })?,
        ),
    };
    let from = from.unwrap_or(today - chrono::Duration::days(DEFAULT_DAYS));
    let points = store.snapshots(app, from).await?;
    Ok(points
        .into_iter()
        .map(|snapshot| TrendPoint {
            application: names
                .get(&snapshot.application_id)
                .cloned()
                .unwrap_or_default(),
            snapshot,
        })
        .collect())
}
