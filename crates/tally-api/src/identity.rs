//! Requests that change how Tally identifies devices and users: a device's status, merging
//! two devices of one machine, and an administrator's classification of an account.

use serde::{Deserialize, Serialize};
use tally_core::DeviceStatus;
use utoipa::ToSchema;

/// An administrator's say on whether an account is a service account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceAccountChoice {
    /// A service account, whatever inventory or import says: never licensable.
    Yes,
    /// A person, whatever inventory or import says.
    No,
    /// No choice of the administrator's: inventory's or import's classification applies.
    Auto,
}

impl ServiceAccountChoice {
    /// The override stored: `None` for `auto`.
    pub fn override_value(self) -> Option<bool> {
        match self {
            Self::Yes => Some(true),
            Self::No => Some(false),
            Self::Auto => None,
        }
    }
}

/// `POST /api/v1/users/service-account`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetServiceAccount {
    /// The account as `GET /api/v1/users` lists it (or, on a pseudonymising site, as the
    /// endpoint names it).
    #[schema(min_length = 1, max_length = 255)]
    pub account: String,
    pub service_account: ServiceAccountChoice,
}

/// `PUT /api/v1/devices/{id}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetDeviceStatus {
    pub status: DeviceStatus,
}

/// `POST /api/v1/devices/{id}/merge`: the device of the path is merged into `into`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeDevices {
    /// The device that keeps everything; the device of the path is deleted.
    pub into: i64,
}
