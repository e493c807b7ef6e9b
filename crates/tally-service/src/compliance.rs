//! Gathers the facts the compliance engine (`tally_core::compliance`) needs from the store and
//! computes every application's position on a date.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
pub use tally_api::{AppDetail, AppPosition};
use tally_core::compliance::{
    self, AppFacts, CustomValue, DeviceFacts, Estate, Installation, OrgTree, Position, Session,
    UserFacts,
};
use tally_core::{org, DeviceStatus, License, UserStatus};
use tally_store::prelude::*;
use tally_store::AppRecord;

use crate::compliance_text::{detail_of, summary, Names};
use crate::{Result, ServiceError};

/// Every application's position on `as_of` (or only the one named `only`), summarised: the
/// figures, counts and reasons, without per-consumer lists (see [`detail`]).
pub async fn compute(
    store: &dyn Store,
    as_of: NaiveDate,
    only: Option<&str>,
) -> Result<Vec<AppPosition>> {
    Ok(compute_named(store, as_of, only, None).await?.0)
}

/// [`compute`] over the devices of `sites` only (a parent narrowing to a child's subtree):
/// their installations and usage sessions make the demand; the licenses are this site's.
pub async fn compute_in(
    store: &dyn Store,
    as_of: NaiveDate,
    only: Option<&str>,
    sites: &[tally_core::SiteCode],
) -> Result<Vec<AppPosition>> {
    let keep = crate::scope::devices_of(store, sites).await?;
    compute_over(store, as_of, only, &keep).await
}

/// [`compute`] over the devices in `keep` only: [`compute_in`] once the sites' devices are
/// known, for callers that compute several days over the same devices.
pub async fn compute_over(
    store: &dyn Store,
    as_of: NaiveDate,
    only: Option<&str>,
    keep: &std::collections::HashSet<i64>,
) -> Result<Vec<AppPosition>> {
    Computed::read_in(store, as_of, only, Some(keep))
        .await?
        .summaries(only)
}

/// [`compute`] (over the devices `keep` only, when given), with the names of the estate's
/// devices, users and org nodes.
pub(crate) async fn compute_named(
    store: &dyn Store,
    as_of: NaiveDate,
    only: Option<&str>,
    keep: Option<&std::collections::HashSet<i64>>,
) -> Result<(Vec<AppPosition>, Names)> {
    let computed = Computed::read_in(store, as_of, only, keep).await?;
    let summaries = computed.summaries(None)?;
    Ok((summaries, computed.names))
}

/// The most consumers one detail page lists.
pub const MAX_PAGE: i64 = 1000;

/// Application `app`'s position on `as_of` in detail: per node and per license by name, and
/// `limit` uncovered and excluded consumers from `offset` on.
pub async fn detail(
    store: &dyn Store,
    as_of: NaiveDate,
    app: &str,
    (limit, offset): (i64, i64),
) -> Result<AppDetail> {
    check_page(limit, offset)?;
    Computed::read(store, as_of, Some(app))
        .await?
        .detail(app, (limit, offset))
}

/// [`detail`] over the devices of `sites` only (a parent narrowing to a child's subtree), as
/// [`compute_in`] computes it.
pub async fn detail_in(
    store: &dyn Store,
    as_of: NaiveDate,
    app: &str,
    page: (i64, i64),
    sites: &[tally_core::SiteCode],
) -> Result<AppDetail> {
    check_page(page.0, page.1)?;
    let keep = crate::scope::devices_of(store, sites).await?;
    Computed::read_in(store, as_of, Some(app), Some(&keep))
        .await?
        .detail(app, page)
}

/// The page bounds of [`detail`], checked before any reading.
pub(crate) fn check_page(limit: i64, offset: i64) -> Result<()> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ServiceError::Invalid(format!(
            "limit: between 1 and {MAX_PAGE}, not {limit}"
        )));
    }
    if !(0..=i64::from(i32::MAX)).contains(&offset) {
        return Err(ServiceError::Invalid(format!(
            "offset: 0 or more (at most {}), not {offset}",
            i32::MAX
        )));
    }
    Ok(())
}

/// Rows of one kind per application id.
type ByApp<T> = HashMap<i64, Vec<T>>;

/// Every position the engine computed, with what the summary and the detail name.
pub(crate) struct Computed {
    apps: Vec<AppRecord>,
    positions: Vec<Position>,
    estate: Estate,
    names: Names,
    licenses: HashMap<i64, Vec<License>>,
    customs: HashMap<i64, Vec<CustomValue>>,
}

/// How many reads of one kind run at once: the work is spread over the store's connections
/// (SQLite reads each on its own thread, PostgreSQL in its own backend), and the estate, the
/// installations and the sessions are read side by side.
const READERS: usize = 4;

impl Computed {
    /// The positions of every application (or only the one named `only`) on `as_of`.
    pub(crate) async fn read(
        store: &dyn Store,
        as_of: NaiveDate,
        only: Option<&str>,
    ) -> Result<Self> {
        Self::read_in(store, as_of, only, None).await
    }

    /// [`Computed::read`] with the demand of the devices in `devices` only, when given.
    pub(crate) async fn read_in(
        store: &dyn Store,
        as_of: NaiveDate,
        only: Option<&str>,
        devices: Option<&std::collections::HashSet<i64>>,
    ) -> Result<Self> {
        let apps = applications(store, as_of, only).await?;
        let ((estate, names), mut installed, mut sessions, licenses, customs) = tokio::try_join!(
            estate_named(store, as_of),
            Installed::read(store, &apps, as_of),
            sessions(store, &apps, as_of),
            licenses_by_application(store, as_of),
            custom_values(store),
        )?;
        if let Some(keep) = devices {
            for pairs in installed.by_app.values_mut() {
                pairs.retain(|(device, _)| keep.contains(device));
            }
            for list in sessions.values_mut() {
                list.retain(|s| keep.contains(&s.device_id));
            }
        }
        let positions = positions(
            &apps,
            &estate,
            (&installed, &sessions),
            (&licenses, &customs),
            as_of,
        );
        Ok(Self {
            apps,
            positions,
            estate,
            names,
            licenses,
            customs,
        })
    }

    /// The summaries of the positions, or of the one application named `only` (any case).
    pub(crate) fn summaries(&self, only: Option<&str>) -> Result<Vec<AppPosition>> {
        let named = |a: &AppRecord| only.is_none_or(|n| a.application.name.eq_ignore_ascii_case(n));
        let summaries: Vec<AppPosition> = self
            .apps
            .iter()
            .zip(&self.positions)
            .filter(|(a, _)| named(a))
            .map(|(a, p)| summary(&a.application, p))
            .collect();
        match only {
            Some(name) if summaries.is_empty() => Err(no_application(name)),
            _ => Ok(summaries),
        }
    }

    /// The estate the positions were computed over.
    pub(crate) fn estate(&self) -> &Estate {
        &self.estate
    }

    /// The application named `name` (any case), as the positions read it.
    pub(crate) fn application(&self, name: &str) -> Result<&AppRecord> {
        let found = self
            .apps
            .iter()
            .find(|a| a.application.name.eq_ignore_ascii_case(name));
        found.ok_or_else(|| no_application(name))
    }

    /// The detail of the application named `app` (any case): a page of its consumers.
    pub(crate) fn detail(&self, app: &str, page: (i64, i64)) -> Result<AppDetail> {
        let (record, position) = self
            .apps
            .iter()
            .zip(&self.positions)
            .find(|(a, _)| a.application.name.eq_ignore_ascii_case(app))
            .ok_or_else(|| no_application(app))?;
        let id = record.application.id;
        let licenses = self.licenses.get(&id).map(Vec::as_slice);
        let customs = self.customs.get(&id).map(Vec::as_slice);
        Ok(detail_of(
            &record.application,
            position,
            (licenses.unwrap_or_default(), customs.unwrap_or_default()),
            (&self.estate, &self.names),
            page,
        ))
    }
}

pub(crate) fn no_application(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("no application named {name:?}; see tally apps"))
}

/// Every application's custom compare values.
async fn custom_values(store: &dyn Store) -> Result<HashMap<i64, Vec<CustomValue>>> {
    let mut customs: HashMap<i64, Vec<CustomValue>> = HashMap::new();
    for (app, org_node, quantity) in store.custom_values().await? {
        customs
            .entry(app)
            .or_default()
            .push(CustomValue { org_node, quantity });
    }
    Ok(customs)
}

/// The engine over every application, the applications split among the machine's cores (the
/// engine is pure and each position independent).
fn positions(
    apps: &[AppRecord],
    estate: &Estate,
    (installed, sessions): (&Installed, &ByApp<Session>),
    (licenses, customs): (&ByApp<License>, &ByApp<CustomValue>),
    as_of: NaiveDate,
) -> Vec<Position> {
    let one = |a: &AppRecord| {
        let id = a.application.id;
        let installations = installed.of(id);
        let facts = AppFacts {
            application: &a.application,
            total_user_metric: a.total_user_metric,
            installations: &installations,
            sessions: sessions.get(&id).map(Vec::as_slice).unwrap_or_default(),
            custom_values: customs.get(&id).map(Vec::as_slice).unwrap_or_default(),
            licenses: licenses.get(&id).map(Vec::as_slice).unwrap_or_default(),
        };
        compliance::position(estate, &facts, as_of)
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if threads < 2 || apps.len() < 2 {
        return apps.iter().map(one).collect();
    }
    let chunk = apps.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = apps
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(one).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("the engine does not panic"))
            .collect()
    })
}

/// Runs `read` over `items` with at most [`READERS`] at once, results in the items' order.
async fn read_spread<'a, T: Sync, R, F, Fut>(items: &'a [T], read: F) -> Result<Vec<R>>
where
    F: Fn(&'a T) -> Fut,
    Fut: std::future::Future<Output = Result<R>>,
{
    let chunk = items.len().div_ceil(READERS).max(1);
    let mut parts = items.chunks(chunk).map(|part| {
        let read = &read;
        async move {
            let mut out = Vec::with_capacity(part.len());
            for item in part {
                out.push(read(item).await?);
            }
            Ok::<_, ServiceError>(out)
        }
    });
    let empty = || async { Ok::<Vec<R>, ServiceError>(Vec::new()) };
    let (a, b, c, d) = (parts.next(), parts.next(), parts.next(), parts.next());
    let (a, b, c, d) = tokio::try_join!(
        async {
            match a {
                Some(f) => f.await,
                None => empty().await,
            }
        },
        async {
            match b {
                Some(f) => f.await,
                None => empty().await,
            }
        },
        async {
            match c {
                Some(f) => f.await,
                None => empty().await,
            }
        },
        async {
            match d {
                Some(f) => f.await,
                None => empty().await,
            }
        },
    )?;
    Ok([a, b, c, d].into_iter().flatten().collect())
}

/// Every application there was on `as_of` (removed ones included until their removal), or
/// only the one named `only` (any case).
pub(crate) async fn applications(
    store: &dyn Store,
    as_of: NaiveDate,
    only: Option<&str>,
) -> Result<Vec<AppRecord>> {
    let mut apps = store.applications_on(as_of).await?;
    if let Some(name) = only {
        apps.retain(|a| a.application.name.eq_ignore_ascii_case(name));
        if apps.is_empty() {
            return Err(no_application(name));
        }
    }
    Ok(apps)
}

/// Every license there was on `as_of` (removed ones included until their removal), by
/// application.
pub(crate) async fn licenses_by_application(
    store: &dyn Store,
    as_of: NaiveDate,
) -> Result<HashMap<i64, Vec<License>>> {
    let mut licenses: HashMap<i64, Vec<License>> = HashMap::new();
    for l in store.licenses_on(as_of).await? {
        licenses.entry(l.application_id).or_default().push(l);
    }
    Ok(licenses)
}

/// Devices and users as the engine sees them, with the statuses they had at the end of
/// `as_of`, on the node set for them or else the one the org rules give. Unknown processor
/// counts count as one.
pub(crate) async fn estate(store: &dyn Store, as_of: NaiveDate) -> Result<Estate> {
    Ok(estate_named(store, as_of).await?.0)
}

/// [`estate`], with the names of its devices, users and org nodes.
async fn estate_named(store: &dyn Store, as_of: NaiveDate) -> Result<(Estate, Names)> {
    let nodes = store.org_nodes().await?;
    let org = OrgTree::new(&nodes);
    let mut names = Names {
        nodes: nodes.into_iter().map(|n| (n.id, n.name)).collect(),
        ..Names::default()
    };
    let rules = store.org_rules().await?;
    let (device_was, user_was) = statuses_then(store, as_of).await?;
    let mut devices = HashMap::new();
    for d in store.compliance_devices().await? {
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
        devices.insert(d.id, facts);
        names.devices.insert(d.id, d.host_name);
    }
    let mut users = HashMap::new();
    for u in store.compliance_users().await? {
        let facts = UserFacts {
            id: u.id,
            org_node: org::user_node(u.org_node, &u.account, &rules),
            status: user_was
                .get(&u.id)
                .map_or(Some(u.status), |s| UserStatus::parse(s))
                .unwrap_or(UserStatus::Active),
            service_account: u.service_account,
        };
        users.insert(u.id, facts);
        names.users.insert(u.id, u.account);
    }
    let estate = Estate {
        org,
        devices,
        users,
    };
    Ok((estate, names))
}

/// The end of `as_of`: positions are as they stood when the day was over.
pub(crate) fn end_of(as_of: NaiveDate) -> DateTime<Utc> {
    as_of.and_hms_opt(0, 0, 0).expect("midnight").and_utc() + Duration::days(1)
}

/// Statuses that changed after `as_of`, as they were before the first such change, for
/// devices and for users.
async fn statuses_then(
    store: &dyn Store,
    as_of: NaiveDate,
) -> Result<(HashMap<i64, String>, HashMap<i64, String>)> {
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

/// What is installed where, as recognition sees it: each distinct title (name, publisher,
/// version) once, and per application the (device, title) pairs its recognition rules match.
pub(crate) struct Installed {
    pub titles: Vec<(String, String, String)>,
    pub by_app: HashMap<i64, Vec<(i64, usize)>>,
}

impl Installed {
    /// Each distinct title installed at the end of `as_of` is matched once; then the devices
    /// of the titles some application recognises are read, several titles at once.
    pub async fn read(store: &dyn Store, apps: &[AppRecord], as_of: NaiveDate) -> Result<Self> {
        let on = end_of(as_of);
        let titles: Vec<((String, String, String), Vec<i64>)> = store
            .software_titles(on)
            .await?
            .into_iter()
            .filter_map(|t| {
                let matching = recognising(apps, (&t.0, &t.1, &t.2));
                (!matching.is_empty()).then_some((t, matching))
            })
            .collect();
        let devices = read_spread(&titles, |(t, _)| async move {
            Ok(store.devices_with((&t.0, &t.1, &t.2), on).await?)
        })
        .await?;
        let mut installed = Installed {
            titles: Vec::with_capacity(titles.len()),
            by_app: HashMap::new(),
        };
        for ((title, matching), devices) in titles.into_iter().zip(devices) {
            let at = installed.titles.len();
            for app in matching {
                let pairs = devices.iter().map(|&device| (device, at));
                installed.by_app.entry(app).or_default().extend(pairs);
            }
            installed.titles.push(title);
        }
        Ok(installed)
    }

    /// The application's installations as the engine counts them.
    fn of(&self, app: i64) -> Vec<Installation> {
        let pairs = self.by_app.get(&app).map(Vec::as_slice).unwrap_or_default();
        pairs
            .iter()
            .map(|&(device_id, _)| Installation {
                device_id,
                user_id: None,
            })
            .collect()
    }
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
) -> Result<HashMap<i64, Vec<Session>>> {
    // Only the metrics that count usage read sessions.
    let counting: Vec<&AppRecord> = apps
        .iter()
        .filter(|a| compliance::counts_usage(a.application.metric))
        .collect();
    let read = read_spread(&counting, |app| async move {
        let period = compliance::metering_period(app.application.metering_period, as_of);
        let sessions = store.sessions(app.application.id, period).await?;
        let sessions = sessions.into_iter().map(engine_session);
        Ok((app.application.id, sessions.collect::<Vec<_>>()))
    })
    .await?;
    Ok(read.into_iter().collect())
}

/// A stored usage session as the engine reads it.
pub(crate) fn engine_session(s: tally_core::sessions::UsageSession) -> Session {
    Session {
        device_id: s.device_id,
        user_id: s.user_id,
        start: s.start_time,
        end: s.end_time,
    }
}

/// Today's snapshot rows from computed positions.
pub fn snapshot_rows(day: NaiveDate, positions: &[AppPosition]) -> Vec<tally_store::Snapshot> {
    positions
        .iter()
        .map(|p| {
            let status = serde_json::to_value(&p.status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            tally_store::Snapshot {
                day,
                application_id: p.application_id,
                required: p.required,
                owned: p.owned,
                covered: p.covered,
                shortfall: p.shortfall,
                surplus: p.surplus,
                status,
            }
        })
        .collect()
}
