//! The checks a whole batch passes before anything is written: every row's fields, and every
//! reference by name to a row in the batch or already stored.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{
    parse_cost, ApplicationRow, Batch, CustomValueRow, ImportError, Known, LicenseRow, OrgNodeRow,
    Origin, Rows,
};
use crate::licenses::{check_license_terms, AssignmentType, Metric};
use crate::limits::{
    check_name, check_range, check_text, check_time, MAX_NAME, MAX_PERIOD_DAYS, MAX_PROCESSORS,
    MAX_PVU_PER_CORE, MAX_QUANTITY, MAX_TEXT, MAX_VERSION,
};
use crate::ValidationError;

struct Check<'a> {
    errors: Vec<ImportError>,
    known: &'a Known,
    /// The clock usage times are checked against (`crate::limits::plausible_times`).
    now: DateTime<Utc>,
    nodes: HashSet<&'a str>,
    hosts: HashSet<&'a str>,
    accounts: HashSet<&'a str>,
    apps: std::collections::HashMap<&'a str, Metric>,
}

impl Check<'_> {
    fn fail(&mut self, origin: &Origin, field: &str, message: impl Into<String>) {
        self.errors.push(ImportError {
            origin: origin.clone(),
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records a failed field check (`crate::limits`) against the row at `origin`.
    fn check(&mut self, origin: &Origin, result: Result<(), ValidationError>) {
        if let Err(e) = result {
            self.fail(origin, e.field, e.message);
        }
    }

    /// Checks optional names: each bounded and printable.
    fn names(&mut self, origin: &Origin, fields: &[(&'static str, Option<&str>, usize)]) {
        for &(field, value, max) in fields {
            if let Some(value) = value {
                self.check(origin, check_name(field, value, max));
            }
        }
    }

    /// A count that is never negative (said as such) nor above `max`.
    fn count(&mut self, origin: &Origin, field: &'static str, value: i64, max: i64) {
        if value < 0 {
            self.fail(origin, field, "must not be negative");
        } else {
            self.check(origin, check_range(field, value, 0..=max));
        }
    }

    fn node_known(&self, name: &str) -> bool {
        self.nodes.contains(name) || self.known.org_nodes.contains(name)
    }

    fn host_known(&self, name: &str) -> bool {
        self.hosts.contains(name) || self.known.host_names.contains(name)
    }

    fn account_known(&self, name: &str) -> bool {
        self.accounts.contains(name) || self.known.accounts.contains(name)
    }

    fn app_metric(&self, name: &str) -> Option<Metric> {
        self.apps
            .get(name)
            .or_else(|| self.known.applications.get(name))
            .copied()
    }
}

/// Checks every row and every reference, usage times against the clock `now`; returns all the
/// problems found (empty: load it).
pub fn validate(batch: &Batch, known: &Known, now: DateTime<Utc>) -> Vec<ImportError> {
    let mut c = Check {
        errors: Vec::new(),
        known,
        now,
        nodes: batch
            .org_nodes
            .iter()
            .map(|(_, r)| r.name.as_str())
            .collect(),
        hosts: batch
            .devices
            .iter()
            .map(|(_, r)| r.host_name.as_str())
            .collect(),
        accounts: batch
            .users
            .iter()
            .map(|(_, r)| r.account.as_str())
            .collect(),
        apps: batch
            .applications
            .iter()
            .map(|(_, r)| (r.name.as_str(), r.metric))
            .collect(),
    };
    check_org_nodes(&mut c, &batch.org_nodes);
    check_people_and_devices(&mut c, batch);
    check_applications(&mut c, &batch.applications);
    check_usage(&mut c, batch);
    check_licenses(&mut c, &batch.licenses);
    check_custom_values(&mut c, &batch.custom_values);
    c.errors
}

fn unique<'a, T>(c: &mut Check, rows: &'a Rows<T>, field: &str, key: impl Fn(&'a T) -> &'a str) {
    let mut seen = HashSet::new();
    for (origin, row) in rows {
        let k = key(row);
        if k.trim().is_empty() {
            c.fail(origin, field, "must not be empty");
        } else if !seen.insert(k) {
            c.fail(origin, field, format!("{k:?} appears twice in this import"));
        }
    }
}

fn check_org_nodes(c: &mut Check, rows: &Rows<OrgNodeRow>) {
    unique(c, rows, "name", |r| r.name.as_str());
    for (origin, row) in rows {
        c.names(
            origin,
            &[
                ("name", Some(&*row.name), MAX_NAME),
                ("parent", row.parent.as_deref(), MAX_NAME),
            ],
        );
        if let Some(parent) = row.parent.as_deref().filter(|p| !p.is_empty()) {
            if !c.node_known(parent) {
                c.fail(origin, "parent", format!("no org node named {parent:?}"));
            }
        }
    }
    if let Some(origin) = cycle(rows, &c.known.org_parents) {
        c.fail(
            &origin,
            "parent",
            "the parents form a cycle; a node cannot be below itself",
        );
    }
}

/// The first row whose chain of parents comes back to it, through the rows and the nodes
/// already `stored` (name → parent name; a row replaces its stored node's parent).
fn cycle(
    rows: &Rows<OrgNodeRow>,
    stored: &std::collections::HashMap<String, String>,
) -> Option<Origin> {
    let mut parent: std::collections::HashMap<&str, Option<&str>> = stored
        .iter()
        .map(|(node, parent)| (node.as_str(), Some(parent.as_str())))
        .collect();
    for (_, r) in rows {
        let up = r.parent.as_deref().filter(|p| !p.is_empty());
        parent.insert(r.name.as_str(), up);
    }
    rows.iter().find_map(|(origin, row)| {
        let mut at = row.name.as_str();
        for _ in 0..=parent.len() {
            at = (*parent.get(at)?)?;
            if at == row.name {
                return Some(origin.clone());
            }
        }
        None
    })
}

fn check_node_ref(c: &mut Check, origin: &Origin, node: &Option<String>) {
    c.names(origin, &[("org_node", node.as_deref(), MAX_NAME)]);
    if let Some(node) = node.as_deref().filter(|n| !n.is_empty()) {
        if !c.node_known(node) {
            c.fail(origin, "org_node", format!("no org node named {node:?}"));
        }
    }
}

fn check_people_and_devices(c: &mut Check, batch: &Batch) {
    unique(c, &batch.devices, "host_name", |r| r.host_name.as_str());
    unique(c, &batch.users, "account", |r| r.account.as_str());
    for (origin, row) in &batch.devices {
        c.names(
            origin,
            &[
                ("host_name", Some(&*row.host_name), MAX_NAME),
                ("serial", row.serial.as_deref(), MAX_NAME),
                ("management_type", row.management_type.as_deref(), MAX_NAME),
            ],
        );
        if let Some(os) = &row.os {
            c.check(origin, check_text("os", os, MAX_TEXT));
        }
        check_node_ref(c, origin, &row.org_node);
        for (field, value, max) in [
            ("sockets", row.sockets, MAX_PROCESSORS),
            ("cores", row.cores, MAX_PROCESSORS),
            ("pvu_per_core", row.pvu_per_core, MAX_PVU_PER_CORE),
        ] {
            if let Some(v) = value {
                c.count(origin, field, v.into(), max.into());
            }
        }
    }
    for (origin, row) in &batch.users {
        c.names(
            origin,
            &[
                ("account", Some(&*row.account), MAX_NAME),
                ("full_name", row.full_name.as_deref(), MAX_NAME),
            ],
        );
        check_node_ref(c, origin, &row.org_node);
    }
}

fn check_applications(c: &mut Check, rows: &Rows<ApplicationRow>) {
    unique(c, rows, "name", |r| r.name.as_str());
    for (origin, row) in rows {
        c.names(
            origin,
            &[
                ("name", Some(&*row.name), MAX_NAME),
                ("publisher", Some(&*row.publisher), MAX_NAME),
                ("software", row.software.as_deref(), MAX_NAME),
                (
                    "software_publisher",
                    row.software_publisher.as_deref(),
                    MAX_NAME,
                ),
                (
                    "software_version",
                    row.software_version.as_deref(),
                    MAX_VERSION,
                ),
                ("metering_rule", row.metering_rule.as_deref(), MAX_NAME),
            ],
        );
        if row.period_days == Some(0) {
            c.fail(
                origin,
                "period_days",
                "give at least 1 day, or leave it empty for the current month",
            );
        } else if let Some(days) = row.period_days {
            c.check(
                origin,
                check_range("period_days", days, 1..=MAX_PERIOD_DAYS),
            );
        }
        if let Some(rule) = row.metering_rule.as_deref().filter(|r| !r.is_empty()) {
            if !c.known.rules.contains(rule) {
                c.fail(
                    origin,
                    "metering_rule",
                    format!("no metering rule named {rule:?}; see tally rules list"),
                );
            }
        }
    }
}

fn check_usage(c: &mut Check, batch: &Batch) {
    for (origin, row) in &batch.installations {
        c.names(
            origin,
            &[
                ("host_name", Some(&*row.host_name), MAX_NAME),
                ("software", Some(&*row.software), MAX_NAME),
                ("version", Some(&*row.version), MAX_VERSION),
                ("publisher", Some(&*row.publisher), MAX_NAME),
            ],
        );
        if !c.host_known(&row.host_name) {
            c.fail(
                origin,
                "host_name",
                format!("no device {:?} in this import or stored", row.host_name),
            );
        }
        if row.software.trim().is_empty() {
            c.fail(origin, "software", "must not be empty");
        }
    }
    for (origin, row) in &batch.sessions {
        c.names(
            origin,
            &[
                ("application", Some(&*row.application), MAX_NAME),
                ("host_name", Some(&*row.host_name), MAX_NAME),
                ("account", Some(&*row.account), MAX_NAME),
            ],
        );
        let now = c.now;
        c.check(origin, check_time("start", row.start, now));
        c.check(origin, check_time("end", row.end, now));
        if c.app_metric(&row.application).is_none() {
            c.fail(
                origin,
                "application",
                format!("no application named {:?}", row.application),
            );
        }
        if !c.host_known(&row.host_name) {
            c.fail(
                origin,
                "host_name",
                format!("no device {:?} in this import or stored", row.host_name),
            );
        }
        if !c.account_known(&row.account) {
            c.fail(
                origin,
                "account",
                format!("no user {:?} in this import or stored", row.account),
            );
        }
        if row.end < row.start {
            c.fail(origin, "end", "is before start");
        }
    }
}

fn check_licenses(c: &mut Check, rows: &Rows<LicenseRow>) {
    for (origin, row) in rows {
        c.names(
            origin,
            &[
                ("application", Some(&*row.application), MAX_NAME),
                ("assigned_to", row.assigned_to.as_deref(), MAX_NAME),
                ("unit_cost", row.unit_cost.as_deref(), MAX_NAME),
                ("currency", row.currency.as_deref(), MAX_NAME),
                ("vendor", row.vendor.as_deref(), MAX_NAME),
                ("order_reference", row.order_reference.as_deref(), MAX_NAME),
            ],
        );
        if let Some(notes) = &row.notes {
            c.check(origin, check_text("notes", notes, MAX_TEXT));
        }
        let Some(app_metric) = c.app_metric(&row.application) else {
            c.fail(
                origin,
                "application",
                format!("no application named {:?}", row.application),
            );
            continue;
        };
        if let Err(e) = check_license_terms(app_metric, row.metric, row.assignment_type) {
            c.fail(origin, e.field, e.message);
        }
        c.count(origin, "quantity", row.quantity, MAX_QUANTITY);
        if let (Some(from), Some(until)) = (row.valid_from, row.valid_until) {
            if until < from {
                c.fail(origin, "valid_until", "is before valid_from");
            }
        }
        if let Some(cost) = row.unit_cost.as_deref().filter(|c| !c.is_empty()) {
            if parse_cost(cost).is_none() {
                c.fail(
                    origin,
                    "unit_cost",
                    format!("{cost:?} is not a price; write e.g. 129.90"),
                );
            }
        }
        check_assignee(c, origin, row);
    }
}

fn check_custom_values(c: &mut Check, rows: &Rows<CustomValueRow>) {
    let mut seen = HashSet::new();
    for (origin, row) in rows {
        match c.app_metric(&row.application) {
            None => c.fail(
                origin,
                "application",
                format!("no application named {:?}", row.application),
            ),
            Some(Metric::CustomCompareValues) => {}
            Some(other) => c.fail(
                origin,
                "application",
                format!(
                    "{:?} is licensed by {}; custom values are for custom_compare_values applications",
                    row.application,
                    other.as_str()
                ),
            ),
        }
        check_node_ref(c, origin, &row.org_node);
        c.count(origin, "quantity", row.quantity, MAX_QUANTITY);
        let node = row.org_node.as_deref().unwrap_or_default();
        if !seen.insert((row.application.as_str(), node)) {
            c.fail(
                origin,
                "org_node",
                "a second value for this application and node in this import",
            );
        }
    }
}

fn check_assignee(c: &mut Check, origin: &Origin, row: &LicenseRow) {
    let target = row.assigned_to.as_deref().filter(|t| !t.is_empty());
    let found = match (row.assignment_type, target) {
        (AssignmentType::Organization, None) => return,
        (AssignmentType::Organization | AssignmentType::Site, Some(t)) => c.node_known(t),
        (AssignmentType::Computer, Some(t)) => c.host_known(t),
        (AssignmentType::User, Some(t)) => c.account_known(t),
        (kind, None) => {
            let what = match kind {
                AssignmentType::Site => "an org node's name",
                AssignmentType::Computer => "a computer's host name",
                _ => "a user's account",
            };
            return c.fail(
                origin,
                "assigned_to",
                format!("a {} license needs {what}", kind.as_str()),
            );
        }
    };
    if !found {
        let target = target.unwrap_or_default();
        c.fail(
            origin,
            "assigned_to",
            format!("no {} named {target:?}", row.assignment_type.as_str()),
        );
    }
}
