//! What an import wrote.

use serde::Serialize;

/// What an import wrote, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    pub org_nodes: u64,
    pub devices: u64,
    pub users: u64,
    pub applications: u64,
    pub installations: u64,
    pub sessions: u64,
    pub licenses: u64,
    pub custom_values: u64,
    /// The ids of the licenses added, in the batch's order (for the API, which adds one).
    #[serde(skip)]
    pub license_ids: Vec<i64>,
    /// The ids of the applications added or changed, in the batch's order (for the API).
    #[serde(skip)]
    pub application_ids: Vec<i64>,
}
