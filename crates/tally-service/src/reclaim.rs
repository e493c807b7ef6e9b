//! The reclaim list, defined once for the API (`/api/v1/reclaim`), the CLI (`tally reclaim`)
//! and the `reclaim` report: installations of a licensed application, on devices that count
//! for compliance, whose program has not run since a cut-off, with the units of the
//! application's metric they take and what those cost at its newest priced license. That is
//! the question an asset manager asks ("which installations can I take back, and what does
//! that free?"): installations are what recognition finds in the inventory; use is the
//! application's sessions and the monthly summary of the metering rules it names.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
pub use tally_api::Reclaimable;
use tally_core::compliance::{self, Estate};
use tally_store::{AppRecord, Store};

use crate::compliance::{applications, end_of, estate, licenses_by_application, Installed};
use crate::Result;

/// Which installations to look at, and since when they count as unused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReclaimQuery {
    /// Installations and device statuses as they stood at the end of this day.
    pub as_of: NaiveDate,
    /// Unused means no use at or after this instant.
    pub unused_since: DateTime<Utc>,
    /// Only this application (by name, any case).
    pub application: Option<String>,
}

impl ReclaimQuery {
    /// Not used in the `days` before the end of `as_of` (the API's and the CLI's form).
    pub fn days(as_of: NaiveDate, days: i64) -> Self {
        Self {
            as_of,
            unused_since: end_of(as_of) - Duration::days(days),
            application: None,
        }
    }
}

/// The reclaim list and what it was drawn from.
#[derive(Debug, Clone)]
pub struct ReclaimList {
    /// Most costly first; then by application and host.
    pub idle: Vec<Reclaimable>,
    /// Installations on devices that count for compliance, idle or not.
    pub installations: usize,
}

/// The installations nobody used since `query.unused_since`.
pub async fn reclaim(store: &dyn Store, query: &ReclaimQuery) -> Result<ReclaimList> {
    let apps = applications(store, query.as_of, query.application.as_deref()).await?;
    let estate = estate(store, query.as_of).await?;
    let hosts: HashMap<i64, String> = store
        .compliance_devices()
        .await?
        .into_iter()
        .map(|d| (d.id, d.host_name))
        .collect();
    let installed = Installed::read(store, &apps, query.as_of).await?;
    let last_use = last_use(store, &apps).await?;
    let licenses = licenses_by_application(store, query.as_of).await?;
    let end = end_of(query.as_of);
    let mut list = ReclaimList {
        idle: Vec::new(),
        installations: 0,
    };
    for app in &apps {
        let id = app.application.id;
        let owned = licenses.get(&id).map(Vec::as_slice).unwrap_or_default();
        for (device, title) in relevant_installations(&installed, &estate, id) {
            list.installations += 1;
            let last = last_use.get(&(id, device.id)).copied();
            if last.is_some_and(|t| t >= query.unused_since) {
                continue;
            }
            let (units, cost) = compliance::tied_up(device, app.application.metric, owned);
            let (package, _, version) = &installed.titles[title];
            list.idle.push(Reclaimable {
                application: app.application.name.clone(),
                device_id: device.id,
                host_name: hosts.get(&device.id).cloned().unwrap_or_default(),
                package: package.clone(),
                version: version.clone(),
                last_used: last,
                days_unused: last.map(|t| (end - t).num_days()),
                units,
                cost,
            });
        }
    }
    list.idle.sort_by(|a, b| {
        let cost = |r: &Reclaimable| r.cost.as_ref().map_or(0, |c| c.minor);
        cost(b)
            .cmp(&cost(a))
            .then_with(|| (&a.application, &a.host_name).cmp(&(&b.application, &b.host_name)))
    });
    Ok(list)
}

/// An application's installations on devices that count for compliance, once per device
/// (with the first title recognised there), by device id.
fn relevant_installations<'a>(
    installed: &'a Installed,
    estate: &'a Estate,
    app: i64,
) -> impl Iterator<Item = (&'a compliance::DeviceFacts, usize)> + 'a {
    let mut pairs: Vec<(i64, usize)> = installed.by_app.get(&app).cloned().unwrap_or_default();
    pairs.sort_unstable();
    pairs.dedup_by_key(|p| p.0);
    pairs.into_iter().filter_map(|(device, title)| {
        let facts = estate.devices.get(&device)?;
        facts
            .status
            .relevant_for_compliance()
            .then_some((facts, title))
    })
}

/// The last use per (application, device): imported sessions, and the monthly summary of the
/// metering rules an application's recognition names.
async fn last_use(
    store: &dyn Store,
    apps: &[AppRecord],
) -> Result<HashMap<(i64, i64), DateTime<Utc>>> {
    let mut last: HashMap<(i64, i64), DateTime<Utc>> = HashMap::new();
    let mut seen = |key: (i64, i64), t: DateTime<Utc>| {
        let entry = last.entry(key).or_insert(t);
        *entry = (*entry).max(t);
    };
    for (app, device, t) in store.last_sessions().await? {
        seen((app, device), t);
    }
    let rules = store.rules().await?;
    for app in apps {
        let named = app
            .recognition
            .iter()
            .filter(|r| !r.metering_rule.is_empty());
        for r in named {
            let Some(rule) = rules
                .iter()
                .find(|m| m.spec.name.eq_ignore_ascii_case(&r.metering_rule))
            else {
                continue;
            };
            let by = tally_store::UsageByKind::Device;
            for u in store.monthly_usage_by(by, rule.id, (0, 999_912)).await? {
                seen((app.application.id, u.id), u.last_used);
            }
        }
    }
    Ok(last)
}
