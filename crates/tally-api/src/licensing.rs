//! Licensing views: compliance positions, their daily trend, installations to reclaim, and
//! placing devices and users on the organisation tree.

use chrono::{DateTime, Utc};
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
/// one reclaim list of the API, the CLI and the `reclaim` report).
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
    /// What those units cost at the newest priced license of the application's metric.
    pub cost: Option<Money>,
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
