//! Users: the accounts programs run under (the seed's `MeteredUserID` / `SMS_MeteredUser`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Lifecycle status of a user. Seed 003: every status is relevant except inactive, to be
/// deleted and deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Inactive,
    ToBeDeleted,
    Deleted,
}

impl UserStatus {
    pub const ALL: [UserStatus; 4] = [
        UserStatus::Active,
        UserStatus::Inactive,
        UserStatus::ToBeDeleted,
        UserStatus::Deleted,
    ];

    pub fn relevant_for_compliance(self) -> bool {
        self == UserStatus::Active
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Inactive => "inactive",
            UserStatus::ToBeDeleted => "to_be_deleted",
            UserStatus::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// An account that ran a metered program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// The seed's `MeteredUserID`.
    pub id: i64,
    /// Account name as the endpoint reports it, e.g. `alice` or `CORP\alice`.
    pub account: String,
    pub full_name: Option<String>,
    /// A technical account that never needs a license (seed 003: no person's name, a service
    /// login); only natural persons create user demand.
    pub service_account: bool,
    /// Why `service_account` is what it is, when known: the inventory's or import's reason
    /// ("uid 0 (system account), from inventory of pc1"), or the administrator's choice.
    pub service_account_reason: Option<String>,
    /// The administrator's choice (`tally users set ACCOUNT --service-account yes|no`), which
    /// wins over inventory and import and survives both; absent when Tally decides.
    pub service_account_set_by_admin: Option<bool>,
    pub status: UserStatus,
    pub org_node: Option<i64>,
}

/// An account as `tally import` reads it and `tally export` writes it: by name, with its org
/// node's name rather than its id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRow {
    pub account: String,
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub status: Option<UserStatus>,
    #[serde(default)]
    pub service_account: Option<bool>,
    #[serde(default)]
    pub org_node: Option<String>,
    /// Seed 003's "user cannot change password" (a directory's flag): an indication of a
    /// service user in the system-metering report. Kept as imported; not exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cannot_change_password: Option<bool>,
}

impl UserRow {
    /// The row exported for `user`, whose org node is named `org_node`: the one place a stored
    /// user becomes its file shape. Only the flag is exported, not its reason or who set it.
    pub fn exported(user: User, org_node: Option<String>) -> Self {
        Self {
            account: user.account,
            full_name: user.full_name,
            status: Some(user.status),
            service_account: Some(user.service_account),
            org_node,
            cannot_change_password: None,
        }
    }
}
