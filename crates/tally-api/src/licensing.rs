//! Licensing views: compliance positions, their daily trend, installations to reclaim, and
//! placing devices and users on the organisation tree.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tally_core::compliance::{Money, Position};
use tally_core::history::Snapshot;
use utoipa::ToSchema;

/// One application's position, with its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppPosition {
    pub application: String,
    pub publisher: String,
    #[serde(flatten)]
    pub position: Position,
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
    /// Most costly first; then by application and host.
    pub idle: Vec<Reclaimable>,
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
