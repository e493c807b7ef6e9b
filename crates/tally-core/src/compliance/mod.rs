//! License compliance: what an application requires under its metric, what its licenses
//! cover, and where the shortfall or the surplus is (seed 002). Pure: the caller gathers the
//! facts (devices, users, installations, usage sessions, licenses) and this module decides.
//!
//! The rules, with a worked example per metric, are in `docs/compliance.md`. In short:
//! - Demand is made of *units*: an installed device, a user, a device that used the
//!   application, or a custom compare value. Only relevant devices (by lifecycle status) and
//!   active natural persons make units; the others are listed as excluded, with the reason.
//!   Concurrent metrics make one pooled figure: the most distinct users (or devices) using the
//!   application in one clock hour of the metering period.
//! - Licenses valid on the as-of date are consumed in order: assigned to a computer or a user
//!   first, then site licenses, then organisation licenses from the deepest node up.
//! - A license of another accepted metric converts: a core license covers an installation by
//!   consuming all of that computer's cores, or nothing.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::device::DeviceStatus;
use crate::licenses::{Application, License, MeteringPeriod, Metric};
use crate::org::OrgNode;
use crate::user::UserStatus;

mod allocation;
mod concurrent;
mod notes;

use allocation::{allocate, allocate_pool, pooled_totals, unit_totals};
pub use concurrent::concurrent_by_hour;
use concurrent::{concurrent, touches};
pub use notes::{surplus_value, validity_note, LicenseNote};

/// Which users the users metric counts: the application's "total user metric" setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TotalUserMetric {
    /// Users who ran the application in the metering period.
    #[default]
    MeteredUsers,
    /// Users an installation belongs to (per-user installations, a device's main user).
    InstallationUsers,
    /// Users in either group, counted once.
    Both,
}

/// What the engine needs to know about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    pub id: i64,
    pub org_node: Option<i64>,
    pub status: DeviceStatus,
    /// Processor sockets.
    pub processors: i64,
    pub cores: i64,
    /// PVU per core, from IBM's table for the device's processor or an override.
    pub pvu_per_core: Option<i64>,
}

/// What the engine needs to know about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFacts {
    pub id: i64,
    pub org_node: Option<i64>,
    pub status: UserStatus,
    pub service_account: bool,
}

/// The application installed on a device, for a user when the installation is per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installation {
    pub device_id: i64,
    pub user_id: Option<i64>,
}

/// One stretch of use of the application (runs joined from usage records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub device_id: i64,
    pub user_id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A custom compare value: a quantity to license, placed on an org node (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomValue {
    pub org_node: Option<i64>,
    pub quantity: i64,
}

/// The organisation tree, for "this node and everything below it".
#[derive(Debug, Clone, Default)]
pub struct OrgTree {
    parent: HashMap<i64, Option<i64>>,
}

impl OrgTree {
    pub fn new(nodes: &[OrgNode]) -> Self {
        Self {
            parent: nodes.iter().map(|n| (n.id, n.parent)).collect(),
        }
    }

    /// Steps from the root: a root is 0.
    /// Whether `node` is a stored node without a parent: the whole organisation.
    pub fn is_root(&self, node: i64) -> bool {
        self.parent.get(&node) == Some(&None)
    }

    pub fn depth(&self, node: i64) -> usize {
        self.ancestors(node).count() - 1
    }

    /// Whether `node` is `ancestor` or lies below it.
    pub fn within(&self, node: i64, ancestor: i64) -> bool {
        self.ancestors(node).any(|n| n == ancestor)
    }

    /// `node`, its parent, and so on up to the root (stopping on a cycle).
    fn ancestors(&self, node: i64) -> impl Iterator<Item = i64> + '_ {
        let mut next = Some(node);
        let mut steps = 0;
        std::iter::from_fn(move || {
            let current = next?;
            steps += 1;
            next = match steps > self.parent.len() {
                true => None,
                false => self.parent.get(&current).copied().flatten(),
            };
            Some(current)
        })
    }
}

/// Everything about the estate that does not depend on the application.
#[derive(Debug, Clone, Default)]
pub struct Estate {
    pub org: OrgTree,
    pub devices: HashMap<i64, DeviceFacts>,
    pub users: HashMap<i64, UserFacts>,
}

/// One application's facts.
#[derive(Debug, Clone, Copy)]
pub struct AppFacts<'a> {
    pub application: &'a Application,
    pub total_user_metric: TotalUserMetric,
    pub installations: &'a [Installation],
    pub sessions: &'a [Session],
    pub custom_values: &'a [CustomValue],
    pub licenses: &'a [License],
}

/// Who or what a unit of demand is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Consumer {
    Device(i64),
    User(i64),
    /// A custom compare value, by its position in the input.
    Custom(usize),
}

/// The position for one application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Compliant,
    UnderLicensed,
    OverLicensed,
    /// CAL and "no license required": licenses are listed, nothing is computed.
    NotCalculated,
}

/// An amount of money in minor units (cents) of a currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    pub minor: i64,
    pub currency: String,
}

/// Demand the licenses did not cover, with how much is missing in the application's metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Uncovered {
    pub consumer: Consumer,
    pub missing: i64,
}

/// A device or user left out of the demand, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Excluded {
    pub consumer: Consumer,
    pub reason: String,
    /// The reason in a word or two, for counting exclusions together ("retired",
    /// "service account").
    pub short: String,
}

/// Demand and cover on one org node (`None`: devices and users on no node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeFigures {
    pub org_node: Option<i64>,
    pub required: i64,
    pub covered: i64,
}

/// How one license was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LicenseUse {
    pub license_id: i64,
    pub metric: Metric,
    pub quantity: i64,
    /// Valid on the as-of date; an invalid license covers nothing.
    pub valid: bool,
    /// Units of the license's own metric consumed.
    pub used: i64,
    /// Why the license counts nothing, or why its idle units cannot cover the application's
    /// uncovered demand; `None` when it counts and nothing it could cover is left uncovered.
    pub note: Option<LicenseNote>,
}

/// The compliance position of one application on one date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Position {
    pub application_id: i64,
    pub metric: Metric,
    pub as_of: NaiveDate,
    /// The metering period usage was read from, for usage-based metrics.
    pub period: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Demand in the application's metric.
    pub required: i64,
    /// What the licenses cover plus what licenses of the application's metric leave unused;
    /// for CAL and "no license required", the registered quantity valid on the day.
    pub owned: i64,
    pub covered: i64,
    pub shortfall: i64,
    /// Unused licenses of the application's metric.
    pub surplus: i64,
    pub status: Status,
    /// The shortfall at the unit cost of the newest license of the application's metric.
    pub shortfall_cost: Option<Money>,
    /// The unused licenses of the application's metric at their own unit cost, one sum per
    /// currency (licenses without a price are not in it).
    pub surplus_value: Vec<Money>,
    pub uncovered: Vec<Uncovered>,
    pub excluded: Vec<Excluded>,
    pub by_node: Vec<NodeFigures>,
    pub licenses: Vec<LicenseUse>,
}

/// `[start, end)` of the metering period that ends with `as_of`.
pub fn metering_period(period: MeteringPeriod, as_of: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let end = midnight(as_of) + Duration::days(1);
    let start = match period {
        MeteringPeriod::CurrentMonth => midnight(as_of.with_day(1).expect("day 1 exists")),
        MeteringPeriod::RollingDays { days } => end - Duration::days(i64::from(days)),
    };
    (start, end)
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

/// Whether a license counts on `as_of`: owned by then (a license bought later did not exist on
/// the day an auditor asks about) and within its validity.
pub fn license_valid(license: &License, as_of: NaiveDate) -> bool {
    validity_note(license, as_of).is_none()
}

/// One unit of demand: who, where, and how much of the application's metric it needs.
#[derive(Debug, Clone)]
struct Unit {
    consumer: Consumer,
    node: Option<i64>,
    device: Option<i64>,
    user: Option<i64>,
    need: i64,
    left: i64,
}

impl Unit {
    /// `need` of the metric for `consumer` on `node`, none of it covered yet.
    fn new(
        consumer: Consumer,
        node: Option<i64>,
        device: Option<i64>,
        user: Option<i64>,
        need: i64,
    ) -> Self {
        Self {
            consumer,
            node,
            device,
            user,
            need,
            left: need,
        }
    }
}

/// Computes one application's position on `as_of`.
pub fn position(estate: &Estate, facts: &AppFacts, as_of: NaiveDate) -> Position {
    let app = facts.application;
    let period = uses_period(app.metric).then(|| metering_period(app.metering_period, as_of));
    let mut excluded = Vec::new();
    let (figures, licenses) = match demand(estate, facts, period, &mut excluded) {
        Demand::Units(mut units) => {
            let uses = allocate(estate, facts, as_of, &mut units);
            (unit_totals(&units), uses)
        }
        Demand::Pooled(pool) => {
            let uses = allocate_pool(estate, facts, as_of, pool.required);
            (pooled_totals(pool, &uses, app.metric), uses)
        }
        Demand::NotCalculated => {
            let uses = facts.licenses.iter().map(|l| unused(l, as_of)).collect();
            ((0, 0, Vec::new(), Vec::new()), uses)
        }
    };
    let (required, covered, by_node, uncovered) = figures;
    // Quantities are bounded at entry (`limits::MAX_QUANTITY`), but rows stored before that
    // are not: every sum here saturates rather than wrapping into a negative position.
    let surplus: i64 = match calculated(app.metric) {
        true => saturating_sum(
            licenses
                .iter()
                .filter(|u| u.valid && u.metric == app.metric)
                .map(|u| u.quantity.saturating_sub(u.used)),
        ),
        false => 0,
    };
    let shortfall = required.saturating_sub(covered);
    let owned = match calculated(app.metric) {
        true => covered.saturating_add(surplus),
        // Seed 002: a CAL "is only a registration of the number of licenses": owned is the
        // registered quantity, though nothing is computed against it.
        false => saturating_sum(licenses.iter().filter(|u| u.valid).map(|u| u.quantity)),
    };
    let status = match (calculated(app.metric), shortfall, surplus) {
        (false, _, _) => Status::NotCalculated,
        (true, s, _) if s > 0 => Status::UnderLicensed,
        (true, _, s) if s > 0 => Status::OverLicensed,
        _ => Status::Compliant,
    };
    Position {
        application_id: app.id,
        metric: app.metric,
        as_of,
        period,
        required,
        owned,
        covered,
        shortfall,
        surplus,
        status,
        shortfall_cost: shortfall_cost(facts.licenses, app.metric, shortfall),
        surplus_value: match calculated(app.metric) {
            true => surplus_value(facts.licenses, &licenses, app.metric),
            false => Vec::new(),
        },
        uncovered,
        excluded,
        by_node,
        licenses,
    }
}

/// A sum that stops at `i64::MAX` (or `MIN`) instead of wrapping.
pub(crate) fn saturating_sum(values: impl IntoIterator<Item = i64>) -> i64 {
    values.into_iter().fold(0, i64::saturating_add)
}

fn calculated(metric: Metric) -> bool {
    !matches!(metric, Metric::Cal | Metric::NoLicenseRequired)
}

/// Whether the metric counts usage (and so reads sessions of a metering period).
pub fn counts_usage(metric: Metric) -> bool {
    uses_period(metric)
}

fn uses_period(metric: Metric) -> bool {
    matches!(
        metric,
        Metric::Devices | Metric::Users | Metric::ConcurrentUsers | Metric::ConcurrentDevices
    )
}

fn unused(license: &License, as_of: NaiveDate) -> LicenseUse {
    let note = validity_note(license, as_of);
    LicenseUse {
        license_id: license.id,
        metric: license.metric,
        quantity: license.quantity,
        valid: note.is_none(),
        used: 0,
        note,
    }
}

/// What an application's metric asks for.
enum Demand {
    Units(Vec<Unit>),
    /// The concurrent metrics: one figure for the whole estate.
    Pooled(Pooled),
    NotCalculated,
}

/// A pooled demand: the peak, and per node the peak of its own users or devices.
struct Pooled {
    required: i64,
    by_node: Vec<NodeFigures>,
}

fn demand(
    estate: &Estate,
    facts: &AppFacts,
    period: Option<(DateTime<Utc>, DateTime<Utc>)>,
    excluded: &mut Vec<Excluded>,
) -> Demand {
    let in_period = |s: &&Session| period.is_some_and(|p| touches(s, p));
    let sessions: Vec<&Session> = facts.sessions.iter().filter(in_period).collect();
    match facts.application.metric {
        Metric::Installations | Metric::Processors | Metric::ProcessorCores | Metric::Pvu => {
            Demand::Units(installed_units(estate, facts, excluded))
        }
        Metric::Users => Demand::Units(user_units(estate, facts, &sessions, excluded)),
        Metric::Devices => Demand::Units(device_units(estate, &sessions, excluded)),
        Metric::ConcurrentUsers | Metric::ConcurrentDevices => {
            let period = period.expect("the concurrent metrics use a period");
            Demand::Pooled(concurrent(estate, facts, &sessions, period, excluded))
        }
        Metric::CustomCompareValues => Demand::Units(custom_units(facts)),
        Metric::Cal | Metric::NoLicenseRequired => Demand::NotCalculated,
    }
}

/// Why a device makes no demand: the full reason and its short form.
fn device_reason(device: &DeviceFacts) -> Option<(String, String)> {
    let status = device.status.as_str();
    (!device.status.relevant_for_compliance()).then(|| {
        (
            format!("device status {status} is not relevant for license compliance"),
            status.to_string(),
        )
    })
}

/// Why a user makes no demand: the full reason and its short form.
fn user_reason(user: &UserFacts) -> Option<(String, String)> {
    if user.service_account {
        Some((
            "a service account, not a person".into(),
            "service account".into(),
        ))
    } else if !user.status.relevant_for_compliance() {
        let status = user.status.as_str();
        Some((format!("user status {status}"), status.to_string()))
    } else {
        None
    }
}

fn excluded_for(consumer: Consumer, (reason, short): (String, String)) -> Excluded {
    Excluded {
        consumer,
        reason,
        short,
    }
}

/// The device's demand in `metric`, the units a license of `metric` needs to cover it.
pub fn device_measure(device: &DeviceFacts, metric: Metric) -> Option<i64> {
    match metric {
        Metric::Installations => Some(1),
        Metric::Processors => Some(device.processors),
        Metric::ProcessorCores => Some(device.cores),
        Metric::Pvu => device
            .pvu_per_core
            .map(|pvu| pvu.saturating_mul(device.cores)),
        _ => None,
    }
}

fn installed_units(estate: &Estate, facts: &AppFacts, excluded: &mut Vec<Excluded>) -> Vec<Unit> {
    let mut seen = HashSet::new();
    let mut units = Vec::new();
    let mut installs = facts.installations.to_vec();
    installs.sort_by_key(|i| (i.device_id, i.user_id));
    for install in installs {
        let Some(device) = estate.devices.get(&install.device_id) else {
            continue;
        };
        if !seen.insert(device.id) {
            continue;
        }
        let consumer = Consumer::Device(device.id);
        if let Some(reason) = device_reason(device) {
            excluded.push(excluded_for(consumer, reason));
            continue;
        }
        let Some(need) = device_measure(device, facts.application.metric) else {
            let reason = "no PVU rating: its processor is not in the PVU table; \
                          set pvu_per_core on the device";
            excluded.push(excluded_for(
                consumer,
                (reason.into(), "no PVU rating".into()),
            ));
            continue;
        };
        let (node, user) = (device.org_node, install.user_id);
        units.push(Unit::new(consumer, node, Some(device.id), user, need));
    }
    units
}

fn user_units(
    estate: &Estate,
    facts: &AppFacts,
    sessions: &[&Session],
    excluded: &mut Vec<Excluded>,
) -> Vec<Unit> {
    let metered = sessions.iter().map(|s| s.user_id);
    let installed = facts.installations.iter().filter_map(|i| i.user_id);
    let ids: BTreeSet<i64> = match facts.total_user_metric {
        TotalUserMetric::MeteredUsers => metered.collect(),
        TotalUserMetric::InstallationUsers => installed.collect(),
        TotalUserMetric::Both => metered.chain(installed).collect(),
    };
    let mut units = Vec::new();
    for user in ids.iter().filter_map(|id| estate.users.get(id)) {
        let consumer = Consumer::User(user.id);
        match user_reason(user) {
            Some(reason) => excluded.push(excluded_for(consumer, reason)),
            None => units.push(Unit::new(consumer, user.org_node, None, Some(user.id), 1)),
        }
    }
    units
}

fn device_units(estate: &Estate, sessions: &[&Session], excluded: &mut Vec<Excluded>) -> Vec<Unit> {
    let ids: BTreeSet<i64> = sessions.iter().map(|s| s.device_id).collect();
    let mut units = Vec::new();
    for device in ids.iter().filter_map(|id| estate.devices.get(id)) {
        let consumer = Consumer::Device(device.id);
        match device_reason(device) {
            Some(reason) => excluded.push(excluded_for(consumer, reason)),
            None => units.push(Unit::new(
                consumer,
                device.org_node,
                Some(device.id),
                None,
                1,
            )),
        }
    }
    units
}

fn custom_units(facts: &AppFacts) -> Vec<Unit> {
    facts
        .custom_values
        .iter()
        .enumerate()
        .map(|(i, v)| Unit::new(Consumer::Custom(i), v.org_node, None, None, v.quantity))
        .collect()
}

/// The clock hours of the metering period `[from, to)` a session touches. The session is
/// clipped to the period before it is expanded, so the work (and memory) per session is
/// bounded by the period's hours, never by the session's own length: a session stored from
/// 0001 to 9999 costs a month's hours in a monthly period, as any other does.
pub fn hours_in_period(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> Vec<DateTime<Utc>> {
    crate::summary::hours_in(start, end, period)
}

/// The newest license of the metric with a unit cost prices the shortfall.
fn shortfall_cost(licenses: &[License], metric: Metric, shortfall: i64) -> Option<Money> {
    if shortfall <= 0 {
        return None;
    }
    let newest = licenses
        .iter()
        .filter(|l| l.metric == metric && l.unit_cost_minor.is_some())
        .max_by_key(|l| (l.purchase_date, l.id))?;
    Some(Money {
        minor: shortfall.saturating_mul(newest.unit_cost_minor?),
        currency: newest.currency.clone().unwrap_or_default(),
    })
}

/// Whether an installed-software entry (name, publisher, version) is recognised by a rule's
/// patterns (`*` and `?`, any case). An empty name pattern recognises nothing; empty
/// publisher and version patterns accept any.
pub fn recognises(pattern: (&str, &str, &str), entry: (&str, &str, &str)) -> bool {
    use crate::rules::version_matches as wild;
    !pattern.0.is_empty()
        && wild(pattern.0, entry.0)
        && wild(pattern.1, entry.1)
        && wild(pattern.2, entry.2)
}

/// What an installation left unused ties up: the units it takes in the application's metric
/// (1 for metrics not counted per device) at the unit cost of the newest priced license of
/// that metric.
pub fn tied_up(device: &DeviceFacts, metric: Metric, licenses: &[License]) -> (i64, Option<Money>) {
    let units = device_measure(device, metric).unwrap_or(1);
    let cost = licenses
        .iter()
        .filter(|l| l.metric == metric && l.unit_cost_minor.is_some())
        .max_by_key(|l| (l.purchase_date, l.id))
        .and_then(|l| {
            Some(Money {
                minor: units.saturating_mul(l.unit_cost_minor?),
                currency: l.currency.clone().unwrap_or_default(),
            })
        });
    (units, cost)
}
