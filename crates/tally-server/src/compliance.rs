//! Gathers the facts the compliance engine (`tally_core::compliance`) needs from the store and
//! computes every application's position on a date.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use tally_core::compliance::{
    self, AppFacts, CustomValue, DeviceFacts, Estate, Installation, OrgTree, Position, Session,
    UserFacts,
};
use tally_core::{DeviceStatus, License, UserStatus};
use tally_store::{AppRecord, Store};
use utoipa::ToSchema;

use crate::ApiError;

/// Rows read per page of installed software or sessions.
const PAGE: i64 = 50_000;

/// One application's position, with its name.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppPosition {
    pub application: String,
    pub publisher: String,
    #[serde(flatten)]
    pub position: Position,
}

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
    let estate = estate(store).await?;
    let installs = installations(store, &apps).await?;
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

/// Devices and users as the engine sees them. Unknown processor counts count as one.
async fn estate(store: &dyn Store) -> Result<Estate, ApiError> {
    let org = OrgTree::new(&store.org_nodes().await?);
    let devices = store
        .compliance_devices()
        .await?
        .into_iter()
        .map(|d| {
            let facts = DeviceFacts {
                id: d.id,
                org_node: d.org_node,
                status: DeviceStatus::parse(&d.status).unwrap_or(DeviceStatus::Active),
                processors: i64::from(d.sockets.unwrap_or(1).max(1)),
                cores: i64::from(d.cores.unwrap_or(1).max(1)),
                pvu_per_core: d.pvu_per_core.map(i64::from),
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
                org_node: u.org_node,
                status: UserStatus::parse(&u.status).unwrap_or(UserStatus::Active),
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

/// Installations of each application: installed software its recognition rules match. Each
/// distinct (name, publisher, version) is matched against the rules once.
async fn installations(
    store: &dyn Store,
    apps: &[AppRecord],
) -> Result<HashMap<i64, Vec<Installation>>, ApiError> {
    let mut by_app: HashMap<i64, Vec<Installation>> = HashMap::new();
    let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
    let mut after = (0, String::new());
    loop {
        let page = store.software_page((after.0, &after.1), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = (last.device_id, last.name.clone());
        for row in &page {
            let key = format!("{}\0{}\0{}", row.name, row.publisher, row.version);
            let matching = seen.entry(key).or_insert_with(|| {
                let entry = (
                    row.name.as_str(),
                    row.publisher.as_str(),
                    row.version.as_str(),
                );
                recognising(apps, entry)
            });
            for app in matching.iter() {
                by_app.entry(*app).or_default().push(Installation {
                    device_id: row.device_id,
                    user_id: None,
                });
            }
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

/// Sessions of each application over the longest metering period any application has.
async fn sessions(
    store: &dyn Store,
    apps: &[AppRecord],
    as_of: NaiveDate,
) -> Result<HashMap<i64, Vec<Session>>, ApiError> {
    let periods = apps
        .iter()
        .map(|a| compliance::metering_period(a.application.metering_period, as_of));
    let Some(span) = periods.reduce(|a, b| (a.0.min(b.0), a.1.max(b.1))) else {
        return Ok(HashMap::new());
    };
    let wanted: std::collections::HashSet<i64> = apps.iter().map(|a| a.application.id).collect();
    let mut by_app: HashMap<i64, Vec<Session>> = HashMap::new();
    let mut after = 0;
    loop {
        let page = store.sessions_page(span, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for s in page
            .into_iter()
            .filter(|s| wanted.contains(&s.application_id))
        {
            by_app.entry(s.application_id).or_default().push(Session {
                device_id: s.device_id,
                user_id: s.user_id,
                start: s.start_time,
                end: s.end_time,
            });
        }
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
