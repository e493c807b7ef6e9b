//! What `tally import` loads: one row type per kind of record, each row remembering the file
//! and line it came from, and the checks that run on the whole batch before anything is
//! written (docs/import-format.md). Rows refer to each other by name (an org node's name, a
//! device's host name, a user's account, an application's name), never by database id.

mod check;
mod outcome;
mod warn;

pub use check::validate;
pub use outcome::ImportOutcome;
pub use warn::warnings;
// The file shapes of devices, users and licenses live beside their domain types, which they
// are exported from.
pub use crate::device::DeviceRow;
pub use crate::licenses::LicenseRow;
pub use crate::user::UserRow;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::compliance::TotalUserMetric;
use crate::licenses::Metric;

/// The kinds of file, in the order they are loaded (each may refer to the ones before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    OrgNodes,
    Devices,
    Users,
    Applications,
    Installations,
    UsageSessions,
    Licenses,
    CustomValues,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::OrgNodes,
        Kind::Devices,
        Kind::Users,
        Kind::Applications,
        Kind::Installations,
        Kind::UsageSessions,
        Kind::Licenses,
        Kind::CustomValues,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::OrgNodes => "org_nodes",
            Kind::Devices => "devices",
            Kind::Users => "users",
            Kind::Applications => "applications",
            Kind::Installations => "installations",
            Kind::UsageSessions => "usage_sessions",
            Kind::Licenses => "licenses",
            Kind::CustomValues => "custom_values",
        }
    }

    /// The kind a file holds, from its name: `devices.csv`, `2026-03-licenses.json`.
    pub fn of_file(stem: &str) -> Option<Kind> {
        let stem = stem.to_ascii_lowercase().replace('-', "_");
        Kind::ALL.into_iter().find(|k| stem.ends_with(k.name()))
    }
}

/// Where a row came from, for error messages. The file's name is shared by its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    /// 1-based; for CSV the header is line 1, for JSON the array index plus one.
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A problem with one field of one row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {field}: {message}")]
pub struct ImportError {
    pub origin: Origin,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgNodeRow {
    pub name: String,
    #[serde(default)]
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationRow {
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub publisher: String,
    pub metric: Metric,
    /// Empty: the current calendar month; else a rolling number of days.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3660)]
    pub period_days: Option<u32>,
    #[serde(default)]
    pub total_user_metric: Option<TotalUserMetric>,
    /// A wildcard pattern (`*`, `?`) on installed software names that recognises it.
    #[serde(default)]
    #[schema(max_length = 255)]
    pub software: Option<String>,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub software_publisher: Option<String>,
    #[serde(default)]
    #[schema(max_length = 128)]
    pub software_version: Option<String>,
    /// A metering rule whose usage is this application's.
    #[serde(default)]
    #[schema(max_length = 255)]
    pub metering_rule: Option<String>,
}

impl ApplicationRow {
    /// `name`, licensed by `metric`, with nothing more known yet (no publisher, period,
    /// recognition or rule): set what is known with `ApplicationRow { .., ..ApplicationRow::new(…) }`.
    pub fn new(name: impl Into<String>, metric: Metric) -> Self {
        Self {
            name: name.into(),
            publisher: String::new(),
            metric,
            period_days: None,
            total_user_metric: None,
            software: None,
            software_publisher: None,
            software_version: None,
            metering_rule: None,
        }
    }
}

/// Installations and sessions are the bulk of a large import (millions of rows naming the same
/// few thousand devices, packages and applications), so their names are shared through a
/// [`Pool`] rather than each row owning copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallationRow {
    pub host_name: Arc<str>,
    pub software: Arc<str>,
    #[serde(default)]
    pub version: Arc<str>,
    #[serde(default)]
    pub publisher: Arc<str>,
    /// When it was installed; absent means before anyone knew, so it counts on every day.
    #[serde(default)]
    pub installed_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRow {
    pub application: Arc<str>,
    pub host_name: Arc<str>,
    pub account: Arc<str>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// One row of any kind, as `tally export` reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AnyRow {
    OrgNode(OrgNodeRow),
    Device(DeviceRow),
    User(UserRow),
    Application(ApplicationRow),
    Installation(InstallationRow),
    Session(SessionRow),
    License(LicenseRow),
    CustomValue(CustomValueRow),
}

/// Formats minor units (two decimals) back into the decimal `parse_cost` reads: 12990 → `129.90`.
pub fn format_cost(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", minor.abs() / 100, minor.abs() % 100)
}

/// A custom compare value: the quantity of an application (of the custom compare values
/// metric) to license on an org node, or on none. It replaces the stored one for the same
/// application and node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomValueRow {
    pub application: String,
    #[serde(default)]
    pub org_node: Option<String>,
    pub quantity: i64,
}

/// Rows of one kind with their origins.
pub type Rows<T> = Vec<(Origin, T)>;

/// One copy of each distinct name in an import: a 10,000,000-session file names perhaps
/// 100,000 devices, and rows holding shared copies take a third of the memory.
#[derive(Debug, Default)]
pub struct Pool(HashSet<Arc<str>>);

impl Pool {
    /// The pool's copy of `name`, which becomes the pool's if it has none.
    pub fn share(&mut self, name: Arc<str>) -> Arc<str> {
        if let Some(shared) = self.0.get(&name) {
            return shared.clone();
        }
        self.0.insert(name.clone());
        name
    }

    /// The pool's copy of `name`, made from a `&str` only when new.
    pub fn name(&mut self, name: &str) -> Arc<str> {
        match self.0.get(name) {
            Some(shared) => shared.clone(),
            None => self.share(Arc::from(name)),
        }
    }
}

/// A row whose names can be shared through a [`Pool`]; rows of the small kinds keep theirs.
pub trait Row {
    fn share_names(&mut self, _pool: &mut Pool) {}
}

impl Row for OrgNodeRow {}
impl Row for DeviceRow {}
impl Row for UserRow {}
impl Row for ApplicationRow {}
impl Row for LicenseRow {}
impl Row for CustomValueRow {}

impl Row for InstallationRow {
    fn share_names(&mut self, pool: &mut Pool) {
        for name in [
            &mut self.host_name,
            &mut self.software,
            &mut self.version,
            &mut self.publisher,
        ] {
            *name = pool.share(std::mem::take(name));
        }
    }
}

impl Row for SessionRow {
    fn share_names(&mut self, pool: &mut Pool) {
        for name in [
            &mut self.application,
            &mut self.host_name,
            &mut self.account,
        ] {
            *name = pool.share(std::mem::take(name));
        }
    }
}

/// Everything one `tally import` loads.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub org_nodes: Rows<OrgNodeRow>,
    pub devices: Rows<DeviceRow>,
    pub users: Rows<UserRow>,
    pub applications: Rows<ApplicationRow>,
    pub installations: Rows<InstallationRow>,
    pub sessions: Rows<SessionRow>,
    pub licenses: Rows<LicenseRow>,
    pub custom_values: Rows<CustomValueRow>,
}

impl Batch {
    /// Adds a row of any kind, as read back by `tally export`.
    pub fn push(&mut self, origin: Origin, row: AnyRow) {
        match row {
            AnyRow::OrgNode(r) => self.org_nodes.push((origin, r)),
            AnyRow::Device(r) => self.devices.push((origin, r)),
            AnyRow::User(r) => self.users.push((origin, r)),
            AnyRow::Application(r) => self.applications.push((origin, r)),
            AnyRow::Installation(r) => self.installations.push((origin, r)),
            AnyRow::Session(r) => self.sessions.push((origin, r)),
            AnyRow::License(r) => self.licenses.push((origin, r)),
            AnyRow::CustomValue(r) => self.custom_values.push((origin, r)),
        }
    }
}

/// Names already stored, which rows may refer to besides those in the batch.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub org_nodes: HashSet<String>,
    pub host_names: HashSet<String>,
    pub accounts: HashSet<String>,
    /// Application names with their metric.
    pub applications: std::collections::HashMap<String, Metric>,
    pub rules: HashSet<String>,
    /// Each stored org node's parent, by name (nodes without a parent are left out), so a
    /// file cannot close a cycle through nodes already stored.
    pub org_parents: std::collections::HashMap<String, String>,
    /// The currencies of each application's stored licenses, by application name, for the
    /// warning about a license in another currency.
    pub license_currencies: std::collections::HashMap<String, Vec<String>>,
}

/// Parses a decimal price into minor units (two decimals): `129.9` → 12990.
pub fn parse_cost(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 2 || whole.is_empty() || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok().filter(|w| *w >= 0)?;
    let cents: i64 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(cents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licenses::AssignmentType;

    /// What the checks say about `batch`, one message a problem.
    fn errors(batch: &Batch, known: &Known) -> Vec<String> {
        validate(batch, known, now())
            .iter()
            .map(|e| e.to_string())
            .collect()
    }
    use chrono::TimeZone;

    /// The clock the checks run at.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    fn at(line: usize) -> Origin {
        Origin {
            file: "x.csv".into(),
            line,
        }
    }

    #[test]
    fn rows_share_one_copy_of_each_name() {
        let mut pool = Pool::default();
        let session = |host: &str| SessionRow {
            application: "Chat".into(),
            host_name: host.into(),
            account: "ann".into(),
            start: DateTime::UNIX_EPOCH,
            end: DateTime::UNIX_EPOCH,
        };
        let (mut a, mut b) = (session("pc1"), session("pc1"));
        a.share_names(&mut pool);
        b.share_names(&mut pool);
        assert_eq!(a, b);
        assert!(Arc::ptr_eq(&a.host_name, &b.host_name));
        assert!(Arc::ptr_eq(&a.application, &pool.name("Chat")));
        let mut c = session("pc2");
        c.share_names(&mut pool);
        assert_eq!(&*c.host_name, "pc2");
        assert!(!Arc::ptr_eq(&a.host_name, &c.host_name));
    }

    #[test]
    fn kinds_come_from_file_names() {
        assert_eq!(Kind::of_file("devices"), Some(Kind::Devices));
        assert_eq!(Kind::of_file("2026-03-org-nodes"), Some(Kind::OrgNodes));
        assert_eq!(Kind::of_file("Usage_Sessions"), Some(Kind::UsageSessions));
        assert_eq!(Kind::of_file("notes"), None);
    }

    #[test]
    fn prices_are_read_to_the_cent() {
        assert_eq!(parse_cost("129.9"), Some(12_990));
        assert_eq!(parse_cost("5"), Some(500));
        assert_eq!(parse_cost("0.05"), Some(5));
        for bad in ["", "1.234", "-1", "1,50", "abc", ".5"] {
            assert_eq!(parse_cost(bad), None, "{bad}");
        }
    }

    #[test]
    fn custom_values_need_a_custom_values_application_and_one_value_per_node() {
        let known = Known {
            applications: [
                ("Seats".to_string(), Metric::CustomCompareValues),
                ("Office".to_string(), Metric::Installations),
            ]
            .into(),
            org_nodes: ["HQ".to_string()].into(),
            ..Default::default()
        };
        let row = |app: &str, node: Option<&str>, quantity| CustomValueRow {
            application: app.into(),
            org_node: node.map(Into::into),
            quantity,
        };
        let batch = Batch {
            custom_values: vec![
                (at(2), row("Seats", Some("HQ"), 4)),
                (at(3), row("Seats", None, 1)),
                (at(4), row("Office", None, 1)),
                (at(5), row("Seats", Some("Mars"), 1)),
                (at(6), row("Seats", Some("HQ"), -1)),
            ],
            ..Default::default()
        };
        let errors = errors(&batch, &known);
        assert_eq!(
            errors,
            [
                "x.csv:4: application: \"Office\" is licensed by installations; custom values are for custom_compare_values applications",
                "x.csv:5: org_node: no org node named \"Mars\"",
                "x.csv:6: quantity: must not be negative",
                "x.csv:6: org_node: a second value for this application and node in this import",
            ]
        );
    }

    #[test]
    fn a_cycle_through_stored_nodes_is_refused() {
        let known = Known {
            org_nodes: ["HQ".to_string(), "Sales".to_string(), "East".to_string()].into(),
            org_parents: [
                ("Sales".to_string(), "HQ".to_string()),
                ("East".to_string(), "Sales".to_string()),
            ]
            .into(),
            ..Default::default()
        };
        let node = |name: &str, parent: Option<&str>| OrgNodeRow {
            name: name.into(),
            parent: parent.map(Into::into),
        };
        let closing = Batch {
            org_nodes: vec![(at(2), node("HQ", Some("East")))],
            ..Default::default()
        };
        let errors = errors(&closing, &known);
        assert_eq!(
            errors,
            ["x.csv:2: parent: the parents form a cycle; a node cannot be below itself"]
        );
        // Moving East under HQ and HQ under a new root is no cycle: the file's parents
        // replace the stored ones.
        let moving = Batch {
            org_nodes: vec![
                (at(2), node("Root", None)),
                (at(3), node("HQ", Some("Root"))),
                (at(4), node("Sales", Some("East"))),
                (at(5), node("East", Some("HQ"))),
            ],
            ..Default::default()
        };
        assert_eq!(validate(&moving, &known, now()), vec![]);
    }

    #[test]
    fn prices_are_written_back_as_read() {
        for minor in [0, 5, 500, 12_990, 1_000_001] {
            assert_eq!(parse_cost(&format_cost(minor)), Some(minor), "{minor}");
        }
        assert_eq!(format_cost(12_990), "129.90");
    }

    #[test]
    fn every_problem_is_named_with_its_file_line_and_field() {
        let mut batch = Batch {
            org_nodes: vec![
                (
                    at(2),
                    OrgNodeRow {
                        name: "A".into(),
                        parent: Some("B".into()),
                    },
                ),
                (
                    at(3),
                    OrgNodeRow {
                        name: "B".into(),
                        parent: Some("A".into()),
                    },
                ),
            ],
            ..Default::default()
        };
        batch.devices = vec![(
            at(2),
            DeviceRow {
                host_name: "pc1".into(),
                org_node: Some("Nowhere".into()),
                status: None,
                sockets: Some(-1),
                cores: None,
                pvu_per_core: None,
                os: None,
                serial: None,
                management_type: None,
            },
        )];
        batch.licenses = vec![(
            at(4),
            LicenseRow {
                unit_cost: Some("12,50".into()),
                ..LicenseRow::new(
                    "Office",
                    Metric::ProcessorCores,
                    5,
                    AssignmentType::Organization,
                )
            },
        )];
        let mut known = Known::default();
        known
            .applications
            .insert("Office".into(), Metric::Installations);
        let errors = errors(&batch, &known);
        assert_eq!(
            errors,
            [
                "x.csv:2: parent: the parents form a cycle; a node cannot be below itself",
                "x.csv:2: org_node: no org node named \"Nowhere\"",
                "x.csv:2: sockets: must not be negative",
                "x.csv:4: assignment_type: a processor_cores license may be assigned to: computer; not organization",
                "x.csv:4: unit_cost: \"12,50\" is not a price; write e.g. 129.90",
            ]
        );
    }
}
