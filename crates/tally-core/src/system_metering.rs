//! The system-metering report (seed 003): the installation measures itself — the license
//! certificates it holds, how many devices are in relevant statuses, how many natural persons
//! and how many operators with write access it has — from facts that carry no names. Pure:
//! the service gathers the facts, this decides the figures, tally-report draws them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::certificates::Certificate;
use crate::{DeviceStatus, UserStatus};

/// The metering's version, in every report: figures of different versions may be decided
/// differently.
pub const METERING_VERSION: u32 = 1;

/// Seed 003's caution, in every report.
pub const CAUTION: &str = "The figures of this report are an aid to assessing licensing, not a \
     statement of compliance: compliance depends on the real state of devices and accounts \
     and on the terms and conditions of each license. Please verify the assumptions and the \
     resulting numbers.";

/// Seed 003's note on the criteria, in every report.
pub const INDICATIONS: &str = "Relevant device statuses and the criteria that tell service \
     users from natural persons are indications only: service users are accounts whose \
     password the user cannot change, accounts with no first or last name, and accounts Tally \
     classifies as service accounts, unless an administrator decided otherwise.";

/// The management type that marks a mobile device.
pub const MOBILE_MANAGEMENT: &str = "mdm";

/// Seed 003's four criteria for one device status; relevant when any applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRelevance {
    pub status: DeviceStatus,
    /// Relevant for license compliance.
    pub compliance: bool,
    /// Relevant for end-of-life monitoring.
    pub end_of_life: bool,
    /// Relevant for principal-user assignment.
    pub principal_user: bool,
    /// Relevant for the help desk (not hidden from it).
    pub help_desk: bool,
}

impl StatusRelevance {
    pub fn relevant(&self) -> bool {
        self.compliance || self.end_of_life || self.principal_user || self.help_desk
    }

    /// The criteria that apply, by name, e.g. `compliance, help desk`.
    pub fn criteria(&self) -> String {
        let named = [
            (self.compliance, "compliance"),
            (self.end_of_life, "end of life"),
            (self.principal_user, "principal user"),
            (self.help_desk, "help desk"),
        ];
        let on: Vec<&str> = named.iter().filter(|c| c.0).map(|c| c.1).collect();
        match on.is_empty() {
            true => "none".into(),
            false => on.join(", "),
        }
    }
}

/// A device as the metering sees it: no name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFact {
    pub status: DeviceStatus,
    /// e.g. `mdm` (Mobile Device Management); `None` when not known.
    pub management_type: Option<String>,
}

impl DeviceFact {
    pub fn mobile(&self) -> bool {
        self.management_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(MOBILE_MANAGEMENT))
    }
}

/// A user as the metering sees it: no name, only the indications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserFact {
    pub status: UserStatus,
    /// Tally's own classification (inventory, import) as a service account.
    pub classified_service: bool,
    /// The administrator's decision, which wins.
    pub admin_override: Option<bool>,
    /// Seed 003's first indication: "user cannot change password".
    pub cannot_change_password: bool,
    /// Whether the account has a first or last name (seed 003's second indication: none).
    pub has_name: bool,
}

impl UserFact {
    /// A service user by the indications, unless the administrator decided.
    pub fn service_user(&self) -> bool {
        self.admin_override
            .unwrap_or(self.classified_service || self.cannot_change_password || !self.has_name)
    }
}

/// An operator (token) as the metering sees it: whether it may write, and its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorFact {
    pub write_access: bool,
    pub active: bool,
}

/// One line of the device overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceLine {
    pub status: DeviceStatus,
    pub relevant: bool,
    /// The criteria that make it relevant, or `none`.
    pub criteria: String,
    pub devices: i64,
    /// Of them, mobile devices (management type `mdm`).
    pub mobile: i64,
}

/// One line of the user overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserLine {
    pub status: UserStatus,
    pub relevant: bool,
    pub natural_persons: i64,
    /// Not counted for licensing.
    pub service_users: i64,
}

/// One line of the operator overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OperatorLine {
    /// `active` or `revoked`.
    pub status: String,
    pub write_access: bool,
    pub operators: i64,
}

/// The report's figures: what the DAT carries, signed, and the HTML and PDF show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MeteringResult {
    pub format: String,
    pub metering_version: u32,
    pub as_of: DateTime<Utc>,
    /// The site's alias, or its site code when it has none: never a host name.
    pub site: String,
    pub certificates: Vec<Certificate>,
    pub devices: Vec<DeviceLine>,
    /// Devices in relevant statuses: the devices metric.
    pub relevant_devices: i64,
    pub users: Vec<UserLine>,
    /// Natural persons in relevant statuses: the users metric.
    pub natural_persons: i64,
    pub operators: Vec<OperatorLine>,
    /// Active operators with write access: the operators metric.
    pub write_operators: i64,
    pub caution: String,
    pub indications: String,
}

/// The estate as the metering reads it.
pub struct MeteringFacts<'a> {
    pub site: String,
    pub certificates: Vec<Certificate>,
    pub relevance: &'a [StatusRelevance],
    pub devices: &'a [DeviceFact],
    pub users: &'a [UserFact],
    pub operators: &'a [OperatorFact],
}

fn device_lines(relevance: &[StatusRelevance], devices: &[DeviceFact]) -> Vec<DeviceLine> {
    DeviceStatus::ALL
        .iter()
        .map(|&status| {
            let r = relevance.iter().find(|r| r.status == status);
            let of: Vec<&DeviceFact> = devices.iter().filter(|d| d.status == status).collect();
            DeviceLine {
                status,
                relevant: r.is_some_and(StatusRelevance::relevant),
                criteria: r.map(StatusRelevance::criteria).unwrap_or("none".into()),
                devices: of.len() as i64,
                mobile: of.iter().filter(|d| d.mobile()).count() as i64,
            }
        })
        .collect()
}

fn user_lines(users: &[UserFact]) -> Vec<UserLine> {
    UserStatus::ALL
        .iter()
        .map(|&status| {
            let of: Vec<&UserFact> = users.iter().filter(|u| u.status == status).collect();
            let service = of.iter().filter(|u| u.service_user()).count() as i64;
            UserLine {
                status,
                relevant: status.relevant_for_compliance(),
                natural_persons: of.len() as i64 - service,
                service_users: service,
            }
        })
        .collect()
}

fn operator_lines(operators: &[OperatorFact]) -> Vec<OperatorLine> {
    let mut lines = Vec::new();
    for active in [true, false] {
        for write_access in [true, false] {
            let n = operators
                .iter()
                .filter(|o| o.active == active && o.write_access == write_access)
                .count() as i64;
            lines.push(OperatorLine {
                status: if active { "active" } else { "revoked" }.into(),
                write_access,
                operators: n,
            });
        }
    }
    lines
}

/// The figures, as of `as_of`.
pub fn measure(facts: MeteringFacts<'_>, as_of: DateTime<Utc>) -> MeteringResult {
    let devices = device_lines(facts.relevance, facts.devices);
    let users = user_lines(facts.users);
    let operators = operator_lines(facts.operators);
    MeteringResult {
        format: "tally-system-metering".into(),
        metering_version: METERING_VERSION,
        as_of,
        site: facts.site,
        certificates: facts.certificates,
        relevant_devices: devices
            .iter()
            .filter(|d| d.relevant)
            .map(|d| d.devices)
            .sum(),
        devices,
        natural_persons: users
            .iter()
            .filter(|u| u.relevant)
            .map(|u| u.natural_persons)
            .sum(),
        users,
        write_operators: facts
            .operators
            .iter()
            .filter(|o| o.active && o.write_access)
            .count() as i64,
        operators,
        caution: CAUTION.into(),
        indications: INDICATIONS.into(),
    }
}

/// `System_Metering_Report.dat` and its siblings' folder name: the day of execution.
pub fn folder_name(day: NaiveDate) -> String {
    day.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relevance() -> Vec<StatusRelevance> {
        let r = |status, on| StatusRelevance {
            status,
            compliance: false,
            end_of_life: false,
            principal_user: false,
            help_desk: on,
        };
        vec![
            r(DeviceStatus::InStock, true),
            r(DeviceStatus::Active, true),
            r(DeviceStatus::InRepair, false),
            r(DeviceStatus::Retired, false),
        ]
    }

    #[test]
    fn figures_follow_the_criteria_and_indications() {
        let device = |status, mt: Option<&str>| DeviceFact {
            status,
            management_type: mt.map(str::to_string),
        };
        let devices = [
            device(DeviceStatus::Active, None),
            device(DeviceStatus::Active, Some("MDM")),
            device(DeviceStatus::InStock, None),
            device(DeviceStatus::InRepair, None),
            device(DeviceStatus::Retired, Some("mdm")),
        ];
        let user = |status, classified, over, ccp, named| UserFact {
            status,
            classified_service: classified,
            admin_override: over,
            cannot_change_password: ccp,
            has_name: named,
        };
        let users = [
            user(UserStatus::Active, false, None, false, true),
            user(UserStatus::Active, false, None, true, true),
            user(UserStatus::Active, false, None, false, false),
            user(UserStatus::Active, true, Some(false), false, true),
            user(UserStatus::Active, false, Some(true), false, true),
            user(UserStatus::Deleted, false, None, false, true),
        ];
        let operators = [
            OperatorFact {
                write_access: true,
                active: true,
            },
            OperatorFact {
                write_access: false,
                active: true,
            },
            OperatorFact {
                write_access: true,
                active: false,
            },
        ];
        let r = measure(
            MeteringFacts {
                site: "Production".into(),
                certificates: vec![],
                relevance: &relevance(),
                devices: &devices,
                users: &users,
                operators: &operators,
            },
            DateTime::UNIX_EPOCH,
        );
        assert_eq!(
            r.relevant_devices, 3,
            "in stock and active are relevant here"
        );
        assert_eq!(r.devices[1].mobile, 1);
        assert_eq!(r.devices[0].criteria, "help desk");
        assert_eq!(r.devices[3].criteria, "none");
        assert_eq!(
            r.natural_persons, 2,
            "a named person, and one the admin says is a person"
        );
        assert_eq!(r.users[0].service_users, 3);
        assert_eq!(r.write_operators, 1);
    }
}
