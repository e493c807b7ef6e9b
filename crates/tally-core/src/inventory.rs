//! What inventory says a device has: installed packages with the executables they ship, and
//! local accounts. The agent reports it (`wire::v1::Inventory`); these are the stored views.

use serde::Serialize;
use utoipa::ToSchema;

use crate::wire::v1::{InstalledSoftware, LocalAccount};

/// A device's stored inventory beyond its hardware columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeviceInventory {
    pub software: Vec<InstalledSoftware>,
    pub accounts: Vec<LocalAccount>,
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
