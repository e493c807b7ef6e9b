//! Devices: the computers agents run on (the seed's `ResourceID` / `SMS_R_System`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::site::SiteCode;

/// Asset lifecycle status. Seed 003 counts only devices "in a relevant status" for licensing and
/// lists the others for transparency, so the status carries that relevance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Ordered or received, not yet deployed: not relevant.
    InStock,
    /// Deployed and in use: relevant.
    Active,
    /// Under repair but still the organisation's: relevant.
    InRepair,
    /// Retired, disposed of, or lost: not relevant.
    Retired,
}

impl DeviceStatus {
    pub const ALL: [DeviceStatus; 4] = [
        DeviceStatus::InStock,
        DeviceStatus::Active,
        DeviceStatus::InRepair,
        DeviceStatus::Retired,
    ];

    /// Whether a device in this status creates license demand.
    pub fn relevant_for_compliance(self) -> bool {
        matches!(self, DeviceStatus::Active | DeviceStatus::InRepair)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::InStock => "in_stock",
            DeviceStatus::Active => "active",
            DeviceStatus::InRepair => "in_repair",
            DeviceStatus::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A computer known to a site, from enrolment, inventory or import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Device {
    /// The seed's `ResourceID`: the site database's id for the computer.
    pub id: i64,
    pub site_code: SiteCode,
    pub host_name: String,
    pub fqdn: Option<String>,
    pub os: Option<String>,
    /// DMI serial number where readable; identifies a machine across re-installs.
    pub serial: Option<String>,
    pub cpu_model: Option<String>,
    pub sockets: Option<i32>,
    pub cores: Option<i32>,
    pub threads: Option<i32>,
    pub memory_bytes: Option<i64>,
    /// Processor value units per core; overrides IBM's table for this device when set.
    pub pvu_per_core: Option<i32>,
    pub is_virtual: bool,
    pub status: DeviceStatus,
    pub org_node: Option<i64>,
    pub last_seen: Option<DateTime<Utc>>,
}

/// What is needed to create or refresh a device; the store assigns `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewDevice {
    pub site_code: SiteCode,
    pub host_name: String,
    pub fqdn: Option<String>,
    pub os: Option<String>,
    pub serial: Option<String>,
}
