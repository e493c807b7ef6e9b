//! Gathers the facts the compliance engine (`tally_core::compliance`) needs from the store and
//! computes every application's position on a date.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
pub use tally_api::{AppPosition, Reclaimable};
use tally_core::compliance::{
    self, AppFacts, CustomValue, DeviceFacts, Estate, Installation, OrgTree, Session, UserFacts,
};
use tally_core::{org, DeviceStatus, License, UserStatus};
use tally_store::prelude::*;
use tally_store::AppRecord;

use crate::ApiError;

/// Every application's position on `as_of` (or only the one named `only`).
pub async fn compute(
    store: &dyn Store,
    as_of: NaiveDate,
    only: Option<&str>,
) -> Result<Vec<AppPosition>, ApiError> {
    let mut apps = store.applications().await?;
    if let Some(name) = only {
        apps.retain(|a| a.application.name.eq_ignore_ascii_case(name));
        if apps.is_empty() {
            return Err(ApiError::NotFound(format!(
                "no application named {name:?}; see tally apps"
            )));
        }
    }
    let estate = estate(store, as_of).await?;
    let installs = installations(store, &apps, as_of).await?;
    let sessions = sessions(store, &apps, as_of).await?;
    let mut licenses: HashMap<i64, Vec<License>> = HashMap::new();
    for l in store.licenses().await? {
        licenses.entry(l.application_id).or_default().push(l);
    }
    let mut customs: HashMap<i64, Vec<CustomValue>> = HashMap::new();
    for (app, org_node, quantity) in store.custom_values().await? {
        customs
            .entry(app)
            .or_default()
            .push(CustomValue { org_node, quantity });
    }
    let positions = apps
        .iter()
        .map(|a| {
            let id = a.application.id;
            let facts = AppFacts {
                application: &a.application,
                total_user_metric: a.total_user_metric,
                installations: installs.get(&id).map(Vec::as_slice).unwrap_or_default(),
                sessions: sessions.get(&id).map(Vec::as_slice).unwrap_or_default(),
                custom_values: customs.get(&id).map(Vec::as_slice).unwrap_or_default(),
                licenses: licenses.get(&id).map(Vec::as_slice).unwrap_or_default(),
            };
            AppPosition {
                application: a.application.name.clone(),
                publisher: a.application.publisher.clone(),
                position: compliance::position(&estate, &facts, as_of),
            }
        })
        .collect();
    Ok(positions)
}

/// Devices and users as the engine sees them, with the statuses they had at the end of
/// `as_of`, on the node set for them or else the one the org rules give. Unknown processor
/// counts count as one.
async fn estate(store: &dyn Store, as_of: NaiveDate) -> Result<Estate, ApiError> {
    let org = OrgTree::new(&store.org_nodes().await?);
    let rules = store.org_rules().await?;
    let (device_was, user_was) = statuses_then(store, as_of).await?;
    let devices = store
        .compliance_devices()
        .await?
        .into_iter()
        .map(|d| {
            let facts = DeviceFacts {
                id: d.id,
                org_node: org::device_node(d.org_node, d.site_code.as_str(), &d.host_name, &rules),
                status: device_was
                    .get(&d.id)
                    .map_or(Some(d.status), |s| DeviceStatus::parse(s))
                    .unwrap_or(DeviceStatus::Active),
                processors: i64::from(d.sockets.unwrap_or(1).max(1)),
                cores: i64::from(d.cores.unwrap_or(1).max(1)),
                pvu_per_core: pvu_per_core(&d),
            };
            (d.id, facts)
        })
        .collect();
    let users = store
        .compliance_users()
        .await?
        .into_iter()
        .map(|u| {
            let facts = UserFacts {
                id: u.id,
                org_node: org::user_node(u.org_node, &u.account, &rules),
                status: user_was
                    .get(&u.id)
                    .map_or(Some(u.status), |s| UserStatus::parse(s))
                    .unwrap_or(UserStatus::Active),
                service_account: u.service_account,
            };
            (u.id, facts)
        })
        .collect();
    Ok(Estate {
        org,
        devices,
        users,
    })
}

/// The end of `as_of`: positions are as they stood when the day was over.
fn end_of(as_of: NaiveDate) -> DateTime<Utc> {
    as_of.and_hms_opt(0, 0, 0).expect("midnight").and_utc() + Duration::days(1)
}

/// Statuses that changed after `as_of`, as they were before the first such change, for
/// devices and for users.
async fn statuses_then(
    store: &dyn Store,
    as_of: NaiveDate,
) -> Result<(HashMap<i64, String>, HashMap<i64, String>), ApiError> {
    let (mut devices, mut users) = (HashMap::new(), HashMap::new());
    for change in store.status_changes(end_of(as_of)).await? {
        let then = if change.subject == "device" {
            &mut devices
        } else {
            &mut users
        };
        then.entry(change.subject_id).or_insert(change.old_status);
    }
    Ok((devices, users))
}

/// The device's own PVU rating, else IBM's for its processor and sockets.
fn pvu_per_core(device: &tally_core::Device) -> Option<i64> {
    let sockets = u32::try_from(device.sockets.unwrap_or(1)).unwrap_or(1);
    device.pvu_per_core.map(i64::from).or_else(|| {
        let model = device.cpu_model.as_deref()?;
        tally_core::pvu::lookup(model, sockets)
    })
}

/// Installations of each application: installed software its recognition rules match. Each
/// distinct title (name, publisher, version) is matched once; then its devices are read.
async fn installations(
    store: &dyn Store,
    apps: &[AppRecord],
    as_of: NaiveDate,
) -> Result<HashMap<i64, Vec<Installation>>, ApiError> {
    let on = end_of(as_of);
    let mut by_app: HashMap<i64, Vec<Installation>> = HashMap::new();
    for (name, publisher, version) in store.software_titles(on).await? {
        let title = (name.as_str(), publisher.as_str(), version.as_str());
        let matching = recognising(apps, title);
        if matching.is_empty() {
            continue;
        }
        let devices = store.devices_with(title, on).await?;
        for app in matching {
            let installs = devices.iter().map(|&device_id| Installation {
                device_id,
                user_id: None,
            });
            by_app.entry(app).or_default().extend(installs);
        }
    }
    Ok(by_app)
}

fn recognising(apps: &[AppRecord], entry: (&str, &str, &str)) -> Vec<i64> {
    apps.iter()
        .filter(|a| {
            a.recognition.iter().any(|r| {
                let pattern = (
                    r.software.as_str(),
                    r.publisher.as_str(),
                    r.version.as_str(),
                );
                compliance::recognises(pattern, entry)
            })
        })
        .map(|a| a.application.id)
        .collect()
}

/// Sessions of each usage-counting application in its own metering period.
async fn sessions(
    store: &dyn Store,
    apps: &[AppRecord],
    as_of: NaiveDate,
) -> Result<HashMap<i64, Vec<Session>>, ApiError> {
    // Only the metrics that count usage read sessions.
    let counting: Vec<&AppRecord> = apps
        .iter()
        .filter(|a| compliance::counts_usage(a.application.metric))
        .collect();
    let mut by_app: HashMap<i64, Vec<Session>> = HashMap::new();
    for app in counting {
        let period = compliance::metering_period(app.application.metering_period, as_of);
        let sessions = store.sessions(app.application.id, period).await?;
        let sessions = sessions.into_iter().map(|s| Session {
            device_id: s.device_id,
            user_id: s.user_id,
            start: s.start_time,
            end: s.end_time,
        });
        by_app.insert(app.application.id, sessions.collect());
    }
    Ok(by_app)
}

/// Today's snapshot rows from computed positions.
pub fn snapshot_rows(day: NaiveDate, positions: &[AppPosition]) -> Vec<tally_store::Snapshot> {
    positions
        .iter()
        .map(|p| {
            let status = serde_json::to_value(&p.position.status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            tally_store::Snapshot {
                day,
                application_id: p.position.application_id,
                required: p.position.required,
                owned: p.position.owned,
                covered: p.position.covered,
                shortfall: p.position.shortfall,
                surplus: p.position.surplus,
                status,
            }
        })
        .collect()
}

/// Installations on relevant devices not used in the `days` before `as_of`, most costly first.
pub async fn reclaim(
    store: &dyn Store,
    as_of: NaiveDate,
    days: i64,
) -> Result<Vec<Reclaimable>, ApiError> {
    let apps = store.applications().await?;
    let estate = estate(store, as_of).await?;
    let hosts: HashMap<i64, String> = store
        .compliance_devices()
        .await?
        .into_iter()
        .map(|d| (d.id, d.host_name))
        .collect();
    let installs = installations(store, &apps, as_of).await?;
    let last_use = last_use(store, &apps).await?;
    let mut licenses: HashMap<i64, Vec<License>> = HashMap::new();
    for l in store.licenses().await? {
        licenses.entry(l.application_id).or_default().push(l);
    }
    let end = end_of(as_of);
    let cutoff = end - Duration::days(days);
    let mut idle = Vec::new();
    for app in &apps {
        let id = app.application.id;
        let mut devices: Vec<i64> = installs
            .get(&id)
            .into_iter()
            .flatten()
            .map(|i| i.device_id)
            .collect();
        devices.sort_unstable();
        devices.dedup();
        for device in devices.into_iter().filter_map(|d| estate.devices.get(&d)) {
            if !device.status.relevant_for_compliance() {
                continue;
            }
            let last = last_use.get(&(id, device.id)).copied();
            if last.is_some_and(|t| t >= cutoff) {
                continue;
            }
            let owned = licenses.get(&id).map(Vec::as_slice).unwrap_or_default();
            let (units, cost) = compliance::tied_up(device, app.application.metric, owned);
            idle.push(Reclaimable {
                application: app.application.name.clone(),
                device_id: device.id,
                host_name: hosts.get(&device.id).cloned().unwrap_or_default(),
                last_used: last,
                days_unused: last.map(|t| (end - t).num_days()),
                units,
                cost,
            });
        }
    }
    idle.sort_by(|a, b| {
        let cost = |r: &Reclaimable| r.cost.as_ref().map_or(0, |c| c.minor);
        cost(b)
            .cmp(&cost(a))
            .then_with(|| (&a.application, &a.host_name).cmp(&(&b.application, &b.host_name)))
    });
    Ok(idle)
}

/// The last use per (application, device): imported sessions, and the monthly summary of the
/// metering rules an application's recognition names.
async fn last_use(
    store: &dyn Store,
    apps: &[AppRecord],
) -> Result<HashMap<(i64, i64), DateTime<Utc>>, ApiError> {
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
