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
    /// `/etc/machine-id` as the agent reported it; identifies an installation across agent
    /// reinstalls and re-enrolments.
    pub machine_id: Option<String>,
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

/// A computer as `tally import` reads it and `tally export` writes it: by name (its host name,
/// its org node's name), with only what an administrator maintains; the agent's facts and the
/// ids stay out of the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRow {
    pub host_name: String,
    #[serde(default)]
    pub org_node: Option<String>,
    #[serde(default)]
    pub status: Option<DeviceStatus>,
    #[serde(default)]
    pub sockets: Option<i32>,
    #[serde(default)]
    pub cores: Option<i32>,
    #[serde(default)]
    pub pvu_per_core: Option<i32>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    /// How the device is managed, where known; `mdm` (Mobile Device Management) marks a
    /// mobile device in the system-metering report. Kept as imported; not exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_type: Option<String>,
}

impl DeviceRow {
    /// The row exported for `device`, whose org node is named `org_node`: the one place a
    /// stored device becomes its file shape (the name is the store's to look up, so this is
    /// not a `From`).
    pub fn exported(device: Device, org_node: Option<String>) -> Self {
        Self {
            host_name: device.host_name,
            org_node,
            status: Some(device.status),
            sockets: device.sockets,
            cores: device.cores,
            pvu_per_core: device.pvu_per_core,
            os: device.os,
            serial: device.serial,
            management_type: None,
        }
    }
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

impl NewDevice {
    /// A device known only by its site and host name: what generated estates and tests start
    /// from.
    pub fn named(site_code: &SiteCode, host_name: impl Into<String>) -> Self {
        NewDevice {
            site_code: site_code.clone(),
            host_name: host_name.into(),
            fqdn: None,
            os: None,
            serial: None,
        }
    }
}

/// What merging one device into another moved: the device merged from is gone afterwards,
/// everything it held belongs to the device merged into.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MergedDevices {
    pub from_id: i64,
    pub from_host_name: String,
    pub into_id: i64,
    pub into_host_name: String,
    /// Raw usage records moved (a record the other device already holds is dropped).
    pub usage_records: u64,
    /// Usage sessions moved.
    pub usage_sessions: u64,
    /// Installed-software rows (current and history) moved.
    pub installations: u64,
    /// Agents now reporting for the device merged into.
    pub agents: u64,
    /// Computer-assigned licenses now assigned to the device merged into.
    pub licenses: u64,
}

/// A DMI serial, unless it is one of the placeholders firmware ships with (empty, all zeros,
/// "To Be Filled By O.E.M.", "Not Specified", "System Serial Number", …): a placeholder is
/// shared by many machines, so it never identifies one.
pub fn real_serial(raw: &str) -> Option<String> {
    let s = raw.trim();
    let placeholder = s.is_empty()
        || s.chars().all(|c| c == '0' || c == ' ' || c == '-')
        || [
            "to be filled by o.e.m.",
            "to be filled by oem",
            "not specified",
            "not applicable",
            "none",
            "n/a",
            "default string",
            "system serial number",
            "0123456789",
            "123456789",
        ]
        .contains(&s.to_lowercase().as_str());
    (!placeholder).then(|| s.to_string())
}

/// What an enrolling agent says identifies its machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineIdentity {
    /// `/etc/machine-id`.
    pub machine_id: Option<String>,
    /// The DMI product serial, placeholders already dropped ([`real_serial`]).
    pub serial: Option<String>,
}

impl MachineIdentity {
    /// Drops empty machine-ids and placeholder serials, which identify nothing.
    pub fn new(machine_id: Option<&str>, serial: Option<&str>) -> Self {
        let machine_id = machine_id
            .map(str::trim)
            .filter(|m| !m.is_empty() && !m.chars().all(|c| c == '0'))
            .map(str::to_string);
        Self {
            machine_id,
            serial: serial.and_then(real_serial),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.machine_id.is_none() && self.serial.is_none()
    }
}

/// Why an enrolment reuses a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameMachine {
    /// The same `/etc/machine-id` (and no conflicting serial): an agent reinstalled or
    /// re-enrolled on the same installation.
    MachineId,
    /// The same real DMI serial: the machine was re-imaged (a new machine-id).
    Serial,
}

/// Whether `device` is the machine `enrolling` describes. The rule (docs/agent.md): the same
/// machine-id is the same machine unless both carry real serials that differ (a VM cloned
/// from an image that kept its machine-id); otherwise the same real serial is the same
/// machine, whatever the machine-ids. A host name alone never is.
pub fn same_machine(device: &Device, enrolling: &MachineIdentity) -> Option<SameMachine> {
    let stored = MachineIdentity::new(device.machine_id.as_deref(), device.serial.as_deref());
    let serials_differ =
        matches!((&stored.serial, &enrolling.serial), (Some(a), Some(b)) if a != b);
    if stored.machine_id.is_some() && stored.machine_id == enrolling.machine_id && !serials_differ {
        return Some(SameMachine::MachineId);
    }
    if stored.serial.is_some() && stored.serial == enrolling.serial {
        return Some(SameMachine::Serial);
    }
    None
}

/// The device an enrolment reuses among `candidates` (devices sharing its machine-id or
/// serial): a machine-id match before a serial match, the oldest device first.
pub fn matching_device<'a>(
    candidates: &'a [Device],
    enrolling: &MachineIdentity,
) -> Option<(&'a Device, SameMachine)> {
    let mut found: Vec<(&Device, SameMachine)> = candidates
        .iter()
        .filter_map(|d| same_machine(d, enrolling).map(|m| (d, m)))
        .collect();
    found.sort_by_key(|(d, m)| (*m != SameMachine::MachineId, d.id));
    found.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: i64, machine_id: Option<&str>, serial: Option<&str>) -> Device {
        Device {
            id,
            site_code: SiteCode::parse("S01").unwrap(),
            host_name: "vm".into(),
            fqdn: None,
            os: None,
            serial: serial.map(str::to_string),
            machine_id: machine_id.map(str::to_string),
            cpu_model: None,
            sockets: None,
            cores: None,
            threads: None,
            memory_bytes: None,
            pvu_per_core: None,
            is_virtual: false,
            status: DeviceStatus::Active,
            org_node: None,
            last_seen: None,
        }
    }

    #[test]
    fn placeholders_are_not_serials() {
        for p in [
            "",
            "  ",
            "0",
            "000000",
            "To Be Filled By O.E.M.",
            "Not Specified",
            "System Serial Number",
            "Default string",
        ] {
            assert_eq!(real_serial(p), None, "{p:?}");
        }
        assert_eq!(real_serial(" PF2ABCDE \n").as_deref(), Some("PF2ABCDE"));
    }

    #[test]
    fn a_machine_is_found_by_machine_id_then_serial_never_by_name() {
        let by_id = MachineIdentity::new(Some("abc"), None);
        assert_eq!(
            same_machine(&device(1, Some("abc"), None), &by_id),
            Some(SameMachine::MachineId)
        );
        assert_eq!(same_machine(&device(1, Some("other"), None), &by_id), None);
        assert_eq!(
            same_machine(&device(1, None, None), &by_id),
            None,
            "a host name alone is never enough"
        );
        // Re-imaged: a new machine-id, the same serial.
        let reimaged = MachineIdentity::new(Some("new"), Some("SN1"));
        assert_eq!(
            same_machine(&device(1, Some("old"), Some("SN1")), &reimaged),
            Some(SameMachine::Serial)
        );
        // A clone that kept its image's machine-id but has its own serial is another machine.
        let clone = MachineIdentity::new(Some("abc"), Some("SN2"));
        assert_eq!(
            same_machine(&device(1, Some("abc"), Some("SN1")), &clone),
            None
        );
        // Placeholder serials match nothing.
        let placeholder = MachineIdentity::new(None, Some("To Be Filled By O.E.M."));
        assert!(placeholder.is_empty());
        assert_eq!(
            same_machine(
                &device(1, None, Some("To Be Filled By O.E.M.")),
                &placeholder
            ),
            None
        );
    }

    #[test]
    fn machine_id_matches_come_first_then_the_oldest() {
        let devices = [
            device(3, None, Some("SN1")),
            device(5, Some("abc"), None),
            device(4, Some("abc"), None),
        ];
        let found = matching_device(&devices, &MachineIdentity::new(Some("abc"), Some("SN1")));
        assert_eq!(
            found.map(|(d, m)| (d.id, m)),
            Some((4, SameMachine::MachineId))
        );
    }
}
