//! Compliance snapshots read back as trends: each day's figures of an application, named; at a
//! parent, a site's trend computed again over its devices.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate};
use tally_api::TrendPoint;
use tally_core::SiteCode;
use tally_store::Store;

use crate::compliance::{compute_over, snapshot_rows};
use crate::{Result, ServiceError};

/// How far back trends go when the caller names no first day.
pub const DEFAULT_DAYS: i64 = 90;

/// The most days a site's trend reaches back in one request: each day is a position computed
/// then and there.
pub const MAX_SITE_DAYS: i64 = 92;

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
    let from = from.unwrap_or(today - Duration::days(DEFAULT_DAYS));
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

/// [`snapshots`] over the devices of `sites` only (a parent narrowing to a child's subtree).
/// The kept snapshots are the whole subtree's and cannot be split by site, so each day that has
/// snapshots from `from` on is computed again over those devices, as
/// [`crate::compliance::compute_in`] computes a past day (`tally compliance --site CODE --as-of
/// DAY`): those devices' installations and usage sessions then against this site's licenses
/// then, with today's org placements and processor counts. An application gets a point on the
/// days it has a snapshot. At most [`MAX_SITE_DAYS`] days back from `today`.
pub async fn snapshots_in(
    store: &dyn Store,
    app: Option<&str>,
    from: Option<NaiveDate>,
    today: NaiveDate,
    sites: &[SiteCode],
) -> Result<Vec<TrendPoint>> {
    let from = from.unwrap_or(today - Duration::days(DEFAULT_DAYS));
    if today - from >= Duration::days(MAX_SITE_DAYS) {
        return Err(ServiceError::Invalid(format!(
            "from: a site's trend is computed again one day at a time, at most {MAX_SITE_DAYS} \
             days back; give a day from {} on, or leave out site for the kept snapshots",
            today - Duration::days(MAX_SITE_DAYS - 1)
        )));
    }
    let mut days: BTreeMap<NaiveDate, HashMap<i64, String>> = BTreeMap::new();
    for kept in snapshots(store, app, Some(from), today).await? {
        let day = days.entry(kept.snapshot.day).or_default();
        day.insert(kept.snapshot.application_id, kept.application);
    }
    // The sites' devices are read once, not once per day.
    let devices = crate::scope::devices_of(store, sites).await?;
    let mut points = Vec::new();
    for (day, kept) in days {
        let positions = match compute_over(store, day, app, &devices).await {
            // The application was removed later that day, after its snapshot.
            Err(ServiceError::NotFound(_)) if app.is_some() => continue,
            positions => positions?,
        };
        let mut rows = snapshot_rows(day, &positions);
        rows.sort_by_key(|row| row.application_id);
        points.extend(rows.into_iter().filter_map(|snapshot| {
            let application = kept.get(&snapshot.application_id)?.clone();
            Some(TrendPoint {
                application,
                snapshot,
            })
        }));
    }
    Ok(points)
}
