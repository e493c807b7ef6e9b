//! Licensing views: compliance positions, their daily trend, installations to reclaim, and
//! placing devices and users on the organisation tree.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tally_core::compliance::{Consumer, LicenseNote, Money, Status};
use tally_core::history::Snapshot;
use tally_core::licenses::{AssignmentType, Ends, License, Metric};
use tally_core::OrgNode;
use utoipa::ToSchema;

/// Shortfall cost and surplus value of `positions` summed per currency, as (cost, value):
/// money of different currencies is never added. The CLI's totals line and the ELP report's
/// total lines both read this.
pub fn money_totals(positions: &[AppPosition]) -> std::collections::BTreeMap<String, (i64, i64)> {
    let mut totals = std::collections::BTreeMap::<String, (i64, i64)>::new();
    for p in positions {
        if let Some(cost) = &p.shortfall_cost {
            let t = totals.entry(cost.currency.clone()).or_default();
            t.0 = t.0.saturating_add(cost.minor);
        }
        for value in &p.surplus_value {
            let t = totals.entry(value.currency.clone()).or_default();
            t.1 = t.1.saturating_add(value.minor);
        }
    }
    totals
}

/// One application's position, summarised: its figures, what was left out and why, which
/// licenses did not count and why, and how many consumers are uncovered. Its size does not
/// grow with the estate: the consumers themselves are in [`AppDetail`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppPosition {
    pub application: String,
    pub publisher: String,
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
    /// The surplus at each idle license's own unit cost, one sum per currency.
    pub surplus_value: Vec<Money>,
    /// Consumers the licenses leave wholly or partly uncovered.
    pub uncovered: ConsumerCounts,
    /// Devices and users left out of the demand, counted per reason.
    pub excluded: Vec<ReasonCount>,
    /// Licenses that count nothing on the day, or sit idle beside a shortfall, counted per
    /// reason.
    pub license_notes: Vec<ReasonCount>,
    /// All of the above in one line for people, e.g. `3 uncovered devices; 1 license
    /// expired`; empty when there is nothing to explain.
    pub reason: String,
}

/// Devices, users and custom compare values, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsumerCounts {
    pub devices: i64,
    pub users: i64,
    pub custom_values: i64,
}

/// A reason and how many it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReasonCount {
    /// The reason in full.
    pub reason: String,
    /// In a word or two.
    pub short: String,
    pub count: i64,
}

/// One application's position in detail (`GET /api/v1/compliance/detail`): the summary, the
/// demand per org node, every license with its use, and the uncovered and excluded consumers
/// by name, a page at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppDetail {
    #[serde(flatten)]
    pub position: AppPosition,
    pub by_node: Vec<NodeLine>,
    pub licenses: Vec<LicenseLine>,
    pub uncovered_consumers: ConsumerPage,
    pub excluded_consumers: ConsumerPage,
}

/// Demand and cover on one org node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeLine {
    /// `None`: devices and users placed on no node.
    pub org_node: Option<i64>,
    /// The node's name, `(no node)` for none.
    pub org_node_name: String,
    pub required: i64,
    pub covered: i64,
}

/// One license of the application and how it was used on the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LicenseLine {
    pub license_id: i64,
    /// For people: metric, quantity, assignment and its target's name, e.g. `installations
    /// × 50, organization Sales`.
    pub label: String,
    pub metric: Metric,
    pub quantity: i64,
    pub assignment_type: AssignmentType,
    pub assigned_to: Option<i64>,
    /// The org node's, computer's or user's name it is assigned to.
    pub assigned_to_name: Option<String>,
    /// Valid on the as-of day.
    pub valid: bool,
    /// Units of the license's own metric consumed.
    pub used: i64,
    /// Units left unused.
    pub idle: i64,
    pub note: Option<LicenseNote>,
    /// The note for people.
    pub reason: Option<String>,
    pub unit_cost: Option<Money>,
}

/// A page of consumers, `total` in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsumerPage {
    pub total: i64,
    pub offset: i64,
    pub limit: i64,
    pub items: Vec<ConsumerLine>,
}

/// A device, user or custom value, by name, with what it misses or why it was left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsumerLine {
    pub consumer: Consumer,
    /// Host name, account, or `custom value N`.
    pub name: String,
    pub org_node_name: Option<String>,
    /// Units of the application's metric left uncovered (uncovered consumers).
    pub missing: Option<i64>,
    /// Why it was left out (excluded consumers).
    pub reason: Option<String>,
}

/// An installation whose program has not run since the cut-off (`tally_service::reclaim`, the
/// one reclaim list of the API, the CLI and the `reclaim` report). Only installations whose use
/// Tally can know are listed: the application's use is metered on the device or imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reclaimable {
    pub application: String,
    pub device_id: i64,
    pub host_name: String,
    /// The installed software recognised as the application there (the first, when several).
    #[serde(default)]
    pub package: String,
    #[serde(default)]
    pub version: String,
    /// The last use seen (sessions, and the metering rules the application names); `None`
    /// when it never ran.
    pub last_used: Option<DateTime<Utc>>,
    /// Whole days from the last use to the end of the day the list is for.
    pub days_unused: Option<i64>,
    /// Units of the application's metric the installation takes.
    pub units: i64,
    /// What those units cost at the price of `license`.
    pub cost: Option<Money>,
    /// The license taking the installation back would release: one assigned to this computer,
    /// else the newest priced license of the application's metric.
    #[serde(default)]
    pub license_id: Option<i64>,
    /// That license, as a person reads it (`#3: 10 × installations, Acme, order PO-17`).
    #[serde(default)]
    pub license: Option<String>,
}

/// Installations of an application whose use Tally cannot know: never listed as unused and no
/// cost claimed for them, only counted, with why and what would make their use known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NoUsageData {
    pub application: String,
    /// Installations on computers that count for compliance.
    pub installations: i64,
    pub reason: String,
}

/// The reclaim list: idle installations of applications whose use is known, and the
/// applications whose use is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReclaimReport {
    pub as_of: NaiveDate,
    /// Unused means not used at or after this instant.
    pub unused_since: DateTime<Utc>,
    /// Most costly first; then by application and host. Over the API, the page asked for.
    pub idle: Vec<Reclaimable>,
    /// Idle installations in all, on every page.
    #[serde(default)]
    pub idle_total: i64,
    /// What all idle installations tie up, one sum per currency (those without a price are
    /// not in it).
    #[serde(default)]
    pub idle_value: Vec<Money>,
    /// Installations whose use is known, idle or not: what `idle` is a part of.
    pub known_installations: i64,
    /// By application, most installations first.
    pub no_usage_data: Vec<NoUsageData>,
}

/// One application's figures on one day, named for people reading a trend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TrendPoint {
    pub application: String,
    #[serde(flatten)]
    pub snapshot: Snapshot,
}

/// The node to place a device or user on; none takes it off its node (rules apply again).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    pub org_node: Option<String>,
}

/// A license as people read it: the stored license (ids kept), its application's name, what it
/// is assigned to by name, and a label to tell it apart by, since licenses have no name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LicenseView {
    #[serde(flatten)]
    pub license: License,
    /// The application's name.
    pub application: String,
    /// The org node, computer (host name) or user (account) it is assigned to; `None` for a
    /// license on the whole organisation.
    pub assigned_to_name: Option<String>,
    /// `#3 Office, 10 installations`.
    pub label: String,
}

/// A license as added or changed, with what the checks warn about: units that can never be
/// used, a currency other than its application's other licenses'. Plain sentences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LicenseSaved {
    #[serde(flatten)]
    pub license: LicenseView,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// New terms for a license; a field left out keeps its value. Changing `assignment_type`
/// without `assigned_to` assigns it to nothing (for an organisation license: the whole
/// organisation). An empty text clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicensePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1000000000)]
    pub quantity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_type: Option<AssignmentType>,
    /// The org node's name, the computer's host name or the user's account, by type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255)]
    pub assigned_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_until: Option<NaiveDate>,
    /// Price of one unit as a decimal, e.g. `129.90`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255)]
    pub unit_cost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255)]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255)]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255)]
    pub order_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4096)]
    pub notes: Option<String>,
}

/// A license's validity or maintenance that ends soon (`GET /api/v1/licenses/expiring`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Expiring {
    pub license_id: i64,
    /// `#3 Office, 10 installations`.
    pub label: String,
    pub application: String,
    /// What ends: `validity` (the license stops counting) or `maintenance`.
    pub ends: Ends,
    /// The last day it is valid, or under maintenance.
    pub ends_on: NaiveDate,
    /// Days from the day asked about to `ends_on` (0: it ends that day).
    pub days_left: i64,
}

/// An org node with its parent's name (the id is kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrgNodeView {
    #[serde(flatten)]
    pub node: OrgNode,
    pub parent_name: Option<String>,
}
