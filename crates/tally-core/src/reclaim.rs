//! A reclaim campaign: installations an admin took from the idle list and moves through
//! proposed → confirmed → removed, each step stamped with who did it and when, so a campaign
//! is tracked to the money it freed. The cost an installation tied up is kept as it was when it
//! was proposed: once the software is removed it is no longer idle, and the money it freed
//! must still be counted.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::compliance::Money;

/// Where an installation stands in the campaign. Steps only go forward.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReclaimState {
    /// Put on the list: someone should ask whether it is still needed.
    Proposed,
    /// Its user or owner agreed it can go.
    Confirmed,
    /// Uninstalled: the license units it took are free.
    Removed,
}

impl ReclaimState {
    pub const ALL: [ReclaimState; 3] = [Self::Proposed, Self::Confirmed, Self::Removed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Confirmed => "confirmed",
            Self::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// The state a step from this one leads to; `None` from removed, the last.
    pub fn next(self) -> Option<Self> {
        match self {
            Self::Proposed => Some(Self::Confirmed),
            Self::Confirmed => Some(Self::Removed),
            Self::Removed => None,
        }
    }
}

/// An installation (an application on a device) taken onto the reclaim list, with what it tied
/// up when it was proposed. Names are kept as they were, so the record outlives a device that
/// is retired or forgotten afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewReclaimItem {
    pub application: String,
    pub device_id: i64,
    pub host_name: String,
    /// Units of the application's metric the installation takes.
    pub units: i64,
    /// What those units cost; `None` when no license of the metric has a price.
    pub cost: Option<Money>,
    /// The license taking it back releases, as a person reads it.
    pub license: Option<String>,
}

/// One step of an item: when and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReclaimStep {
    pub at: DateTime<Utc>,
    /// The operator (token name) who took the step.
    pub by: String,
}

/// An item of the reclaim list as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReclaimItem {
    pub id: i64,
    #[serde(flatten)]
    pub item: NewReclaimItem,
    pub state: ReclaimState,
    pub proposed: ReclaimStep,
    pub confirmed: Option<ReclaimStep>,
    pub removed: Option<ReclaimStep>,
}

/// The items in one state: how many, and what they tie up (or freed), one sum per currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StateTotal {
    pub state: ReclaimState,
    pub items: usize,
    /// Never added across currencies; items without a price are counted but not in it.
    pub cost: Vec<Money>,
}

/// The campaign: every item (newest proposal first) and the totals of each state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Campaign {
    pub items: Vec<ReclaimItem>,
    /// One per state, in the order proposed, confirmed, removed.
    pub totals: Vec<StateTotal>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_step_forward_only_and_read_back() {
        let steps: Vec<_> = ReclaimState::ALL.iter().map(|s| s.next()).collect();
        assert_eq!(
            steps,
            [
                Some(ReclaimState::Confirmed),
                Some(ReclaimState::Removed),
                None
            ]
        );
        for state in ReclaimState::ALL {
            assert_eq!(ReclaimState::parse(state.as_str()), Some(state));
        }
        assert_eq!(ReclaimState::parse("Removed"), None);
    }
}
