//! The reclaim list, defined once for the API (`/api/v1/reclaim`), the CLI (`tally reclaim`)
//! and the `reclaim` report: installations of an application, on devices that count for
//! compliance, whose program has not run since a cut-off, with the units of the application's
//! metric they take, the license taking them back would release and what that costs. That is
//! the question an asset manager asks ("which installations can I take back, and what does
//! that free?"): installations are what recognition finds in the inventory; use is the
//! application's usage sessions and the monthly summary of the metering rules it names.
//!
//! An installation is listed as unused only when its use could have been seen: usage sessions
//! exist for the application (imported, or made from metered runs), or an enabled metering rule
//! its recognition names meters the device (an agent runs there). Every other installation is
//! counted under "no usage data" with the reason, never as unused and never with a cost: an
//! unmetered database server is not idle, Tally just cannot tell.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
pub use tally_api::{NoUsageData, ReclaimReport, Reclaimable};
use tally_core::compliance::{self, DeviceFacts, Estate, Money};
use tally_core::licenses::{AssignmentType, License, Metric};
use tally_core::MeteringRule;
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
    /// Only installations on these devices (a parent's `site=`); `None`: every device.
    pub devices: Option<HashSet<i64>>,
}

impl ReclaimQuery {
    /// Not used in the `days` before the end of `as_of` (the API's, the CLI's and the report's
    /// form).
    pub fn days(as_of: NaiveDate, days: i64) -> Self {
        Self {
            as_of,
            unused_since: end_of(as_of) - Duration::days(days),
            application: None,
            devices: None,
        }
    }
}

/// The reclaim list: see the module's documentation.
pub type ReclaimList = ReclaimReport;

/// The installations nobody used since `query.unused_since`, and those whose use is unknown.
pub async fn reclaim(store: &dyn Store, query: &ReclaimQuery) -> Result<ReclaimList> {
    let only = query.application.as_deref();
    let inputs = ReclaimInputs::read(store, query.as_of, only).await?;
    inputs.list(query)
}

/// What the reclaim list on a day is computed from: everything but the cut-off and the
/// application asked for, so one read serves every such query while the data stands (see
/// `crate::positions`).
pub(crate) struct ReclaimInputs {
    apps: Vec<AppRecord>,
    estate: Estate,
    hosts: HashMap<i64, String>,
    installed: Installed,
    evidence: Evidence,
    last_use: HashMap<(i64, i64), DateTime<Utc>>,
    licenses: HashMap<i64, Vec<License>>,
}

impl ReclaimInputs {
    /// Reads them for the applications there were on `as_of` (or only the one named `only`).
    pub(crate) async fn read(
        store: &dyn Store,
        as_of: NaiveDate,
        only: Option<&str>,
    ) -> Result<Self> {
        let apps = applications(store, as_of, only).await?;
        let estate = estate(store, as_of).await?;
        let hosts: HashMap<i64, String> = store
            .compliance_devices()
            .await?
            .into_iter()
            .map(|d| (d.id, d.host_name))
            .collect();
        let installed = Installed::read(store, &apps, as_of).await?;
        let last_sessions = store.last_sessions().await?;
        let evidence = Evidence::read(store, &last_sessions).await?;
        let last_use = last_use(store, last_sessions, &apps, &evidence.rules).await?;
        let licenses = licenses_by_application(store, as_of).await?;
        Ok(Self {
            apps,
            estate,
            hosts,
            installed,
            evidence,
            last_use,
            licenses,
        })
    }

    /// When each application was last used on `device` (sessions and metering summaries), by
    /// application name, oldest name first.
    pub(crate) fn last_use_on(&self, device: i64) -> Vec<(String, DateTime<Utc>)> {
        let mut used: Vec<(String, DateTime<Utc>)> = self
            .apps
            .iter()
            .filter_map(|a| {
                let at = self.last_use.get(&(a.application.id, device))?;
                Some((a.application.name.clone(), *at))
            })
            .collect();
        used.sort();
        used
    }

    /// The reclaim list `query` asks for, from these inputs.
    pub(crate) fn list(&self, query: &ReclaimQuery) -> Result<ReclaimList> {
        let only = query.application.as_deref();
        let apps: Vec<&AppRecord> = self
            .apps
            .iter()
            .filter(|a| only.is_none_or(|n| a.application.name.eq_ignore_ascii_case(n)))
            .collect();
        if let (Some(name), true) = (only, apps.is_empty()) {
            return Err(crate::compliance::no_application(name));
        }
        let Self {
            estate,
            hosts,
            installed,
            evidence,
            last_use,
            licenses,
            ..
        } = self;
        let end = end_of(query.as_of);
        let mut list = ReclaimReport {
            as_of: query.as_of,
            unused_since: query.unused_since,
            idle: Vec::new(),
            idle_total: 0,
            idle_value: Vec::new(),
            known_installations: 0,
            no_usage_data: Vec::new(),
        };
        let mut unknown: BTreeMap<(String, String), i64> = BTreeMap::new();
        for app in apps {
            let id = app.application.id;
            let metric = app.application.metric;
            let owned = licenses.get(&id).map(Vec::as_slice).unwrap_or_default();
            for (device, title) in relevant_installations(installed, estate, app) {
                if (query.devices.as_ref()).is_some_and(|keep| !keep.contains(&device.id)) {
                    continue;
                }
                if let Some(reason) = evidence.unknown(app, device.id) {
                    *unknown
                        .entry((app.application.name.clone(), reason))
                        .or_default() += 1;
                    continue;
                }
                list.known_installations += 1;
                let last = last_use.get(&(id, device.id)).copied();
                if last.is_some_and(|t| t >= query.unused_since) {
                    continue;
                }
                let (units, newest_cost) = compliance::tied_up(device, metric, owned);
                let license = freed_license(device, metric, owned, query.as_of);
                let cost = license.and_then(|l| price(l, units)).or(newest_cost);
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
                    license_id: license.map(|l| l.id),
                    license: license.map(license_label),
                });
            }
        }
        list.idle.sort_by(|a, b| {
            let cost = |r: &Reclaimable| r.cost.as_ref().map_or(0, |c| c.minor);
            cost(b)
                .cmp(&cost(a))
                .then_with(|| (&a.application, &a.host_name).cmp(&(&b.application, &b.host_name)))
        });
        list.idle_total = list.idle.len() as i64;
        list.idle_value =
            crate::reclaim_campaign::per_currency(list.idle.iter().filter_map(|r| r.cost.as_ref()));
        list.no_usage_data = unknown
            .into_iter()
            .map(|((application, reason), installations)| NoUsageData {
                application,
                installations,
                reason,
            })
            .collect();
        list.no_usage_data
            .sort_by_key(|n| std::cmp::Reverse(n.installations));
        Ok(list)
    }
}

/// What tells Tally an application is used: sessions stored for it, and the metering rules
/// (with the devices they meter: where an agent runs or metered usage came from).
struct Evidence {
    with_sessions: HashSet<i64>,
    rules: Vec<MeteringRule>,
    metered_devices: HashSet<i64>,
}

impl Evidence {
    async fn read(store: &dyn Store, last_sessions: &[(i64, i64, DateTime<Utc>)]) -> Result<Self> {
        let with_sessions = last_sessions.iter().map(|&(app, _, _)| app).collect();
        // Metered: an agent runs there, or some metering rule's usage came from there.
        let mut metered_devices: HashSet<i64> = store
            .agents()
            .await?
            .into_iter()
            .filter(|a| a.revoked_at.is_none())
            .map(|a| a.device_id)
            .collect();
        let usage = store.monthly_usage(None, (0, 999_912), None).await?;
        metered_devices.extend(usage.into_iter().map(|(key, _)| key.device_id));
        Ok(Self {
            with_sessions,
            rules: store.rules().await?,
            metered_devices,
        })
    }

    /// Why the application's use on `device` cannot be known, or `None` when it can.
    fn unknown(&self, app: &AppRecord, device: i64) -> Option<String> {
        if self.with_sessions.contains(&app.application.id) {
            return None;
        }
        let named: Vec<&str> = app
            .recognition
            .iter()
            .map(|r| r.metering_rule.as_str())
            .filter(|n| !n.is_empty())
            .collect();
        let found: Vec<&MeteringRule> = named
            .iter()
            .filter_map(|n| named_rule(&self.rules, n))
            .collect();
        let enabled = found.iter().find(|r| r.spec.enabled);
        match (named.first(), found.first(), enabled) {
            (None, _, _) => Some(
                "nothing meters it: no metering rule is named in its recognition and no usage \
                 sessions were imported"
                    .into(),
            ),
            (Some(name), None, _) => Some(format!(
                "its recognition names metering rule {name:?}, which does not exist"
            )),
            (_, Some(rule), None) => Some(format!(
                "its metering rule {:?} is disabled",
                rule.spec.name
            )),
            (_, _, Some(_)) if self.metered_devices.contains(&device) => None,
            (_, _, Some(rule)) => Some(format!(
                "nothing meters these computers: no agent runs there to apply rule {:?}, and no \
                 usage sessions were imported",
                rule.spec.name
            )),
        }
    }
}

fn named_rule<'a>(rules: &'a [MeteringRule], name: &str) -> Option<&'a MeteringRule> {
    rules
        .iter()
        .find(|m| m.spec.name.eq_ignore_ascii_case(name))
}

/// The license taking the installation back would release: a valid one of the application's
/// metric assigned to this computer (consumed first), else the newest priced valid one of the
/// metric, else the newest valid one.
fn freed_license<'a>(
    device: &DeviceFacts,
    metric: Metric,
    licenses: &'a [License],
    as_of: NaiveDate,
) -> Option<&'a License> {
    let valid: Vec<&License> = licenses
        .iter()
        .filter(|l| l.metric == metric && compliance::license_valid(l, as_of))
        .collect();
    let newest = |priced: bool| {
        valid
            .iter()
            .filter(|l| !priced || l.unit_cost_minor.is_some())
            .max_by_key(|l| (l.purchase_date, l.id))
            .copied()
    };
    valid
        .iter()
        .find(|l| l.assignment_type == AssignmentType::Computer && l.assigned_to == Some(device.id))
        .copied()
        .or_else(|| newest(true))
        .or_else(|| newest(false))
}

/// `units` at the license's unit price.
fn price(license: &License, units: i64) -> Option<Money> {
    Some(Money {
        minor: units.saturating_mul(license.unit_cost_minor?),
        currency: license.currency.clone().unwrap_or_default(),
    })
}

/// `#3: 10 × installations, Acme, order PO-17`: what a person finds the license by.
pub fn license_label(license: &License) -> String {
    let mut label = format!(
        "#{}: {} × {}",
        license.id,
        license.quantity,
        license.metric.as_str().replace('_', " ")
    );
    if let Some(vendor) = license.vendor.as_deref().filter(|v| !v.is_empty()) {
        label.push_str(&format!(", {vendor}"));
    }
    if let Some(order) = license.order_reference.as_deref().filter(|o| !o.is_empty()) {
        label.push_str(&format!(", order {order}"));
    }
    label
}

/// An application's installations on devices that count for compliance, once per device
/// (with the first title recognised there), by device id. A device the position leaves out
/// for another reason (a PVU license with no PVU rating for the device) is left out too: it
/// ties up nothing the position counts.
fn relevant_installations<'a>(
    installed: &'a Installed,
    estate: &'a Estate,
    app: &AppRecord,
) -> impl Iterator<Item = (&'a DeviceFacts, usize)> + 'a {
    let metric = app.application.metric;
    let id = app.application.id;
    let mut pairs: Vec<(i64, usize)> = installed.by_app.get(&id).cloned().unwrap_or_default();
    pairs.sort_unstable();
    pairs.dedup_by_key(|p| p.0);
    pairs.into_iter().filter_map(move |(device, title)| {
        let facts = estate.devices.get(&device)?;
        let unrated = metric == Metric::Pvu && facts.pvu_per_core.is_none();
        (facts.status.relevant_for_compliance() && !unrated).then_some((facts, title))
    })
}

/// The last use per (application, device): imported sessions, and the monthly summary of the
/// metering rules an application's recognition names.
async fn last_use(
    store: &dyn Store,
    last_sessions: Vec<(i64, i64, DateTime<Utc>)>,
    apps: &[AppRecord],
    rules: &[MeteringRule],
) -> Result<HashMap<(i64, i64), DateTime<Utc>>> {
    let mut last: HashMap<(i64, i64), DateTime<Utc>> = HashMap::new();
    let mut seen = |key: (i64, i64), t: DateTime<Utc>| {
        let entry = last.entry(key).or_insert(t);
        *entry = (*entry).max(t);
    };
    for (app, device, t) in last_sessions {
        seen((app, device), t);
    }
    for app in apps {
        let named = app
            .recognition
            .iter()
            .filter(|r| !r.metering_rule.is_empty());
        for r in named {
            let Some(rule) = named_rule(rules, &r.metering_rule) else {
                continue;
            };
            let by = tally_store::UsageByKind::Device;
            for u in store
                .monthly_usage_by(by, rule.id, (0, 999_912), None)
                .await?
            {
                seen((app.application.id, u.id), u.last_used);
            }
        }
    }
    Ok(last)
}
