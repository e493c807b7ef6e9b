//! What inventory says a device has: installed packages with the executables they ship, and
//! local accounts. The agent reports it (`wire::v1::Inventory`); these are the stored views.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::wire::v1::{InstalledSoftware, LocalAccount};

/// A device's stored inventory beyond its hardware columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
// The served OpenAPI document keeps the description it had when the store defined this type
// (tests/snapshots/openapi.json), whose first sentence strayed from `UsageQuery`; dropping it
// is an API change, made with a refreshed snapshot.
#[schema(
    description = "Which usage records to read.\nA device's stored inventory beyond its hardware columns."
)]
pub struct DeviceInventory {
    pub software: Vec<InstalledSoftware>,
    pub accounts: Vec<LocalAccount>,
}

/// One period a package was installed on a device: from when Tally first saw it (or the date
/// an import gave; `None`: before Tally knew) until its removal (`None`: still installed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwarePeriod {
    pub name: String,
    pub version: String,
    pub publisher: String,
    pub installed_at: Option<DateTime<Utc>>,
    pub removed_at: Option<DateTime<Utc>>,
}

/// A package on a device that ships an executable of a given name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub device_id: i64,
    pub host_name: String,
    pub package: String,
    pub version: String,
    pub file_name: String,
}
