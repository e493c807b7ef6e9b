//! A computed position as people and the API read it: figures with their reasons, and every
//! device, user, node and license by name. The summary counts (its size does not grow with
//! the estate); the detail names, a page of consumers at a time.

use std::collections::{BTreeMap, HashMap};

use tally_api::{
    AppDetail, AppPosition, ConsumerCounts, ConsumerLine, ConsumerPage, LicenseLine, NodeLine,
    ReasonCount,
};
use tally_core::compliance::{Consumer, CustomValue, Estate, LicenseUse, Money, Position, Status};
use tally_core::licenses::{Application, AssignmentType, License, Metric};

/// Names of the estate's devices (host names), users (accounts) and org nodes, by id.
#[derive(Debug, Default)]
pub(crate) struct Names {
    pub devices: HashMap<i64, String>,
    pub users: HashMap<i64, String>,
    pub nodes: HashMap<i64, String>,
}

impl Names {
    fn node(&self, node: Option<i64>) -> String {
        match node {
            None => "(no node)".into(),
            Some(id) => self
                .nodes
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("node {id}")),
        }
    }
}

/// The position without its per-consumer lists: counts, reasons and the line for people.
pub(crate) fn summary(app: &Application, p: &Position) -> AppPosition {
    let mut uncovered = ConsumerCounts::default();
    for u in &p.uncovered {
        match u.consumer {
            Consumer::Device(_) => uncovered.devices += 1,
            Consumer::User(_) => uncovered.users += 1,
            Consumer::Custom(_) => uncovered.custom_values += 1,
        }
    }
    let excluded = counted(
        p.excluded
            .iter()
            .map(|x| (x.reason.as_str(), x.short.as_str())),
    );
    let license_notes = counted(
        p.licenses
            .iter()
            .filter_map(|u| u.note.as_ref())
            .map(|n| (n.kind(), n.kind())),
    );
    let reason = reason_line(p, &uncovered, &excluded, &license_notes);
    AppPosition {
        application: app.name.clone(),
        publisher: app.publisher.clone(),
        application_id: app.id,
        metric: p.metric,
        as_of: p.as_of,
        period: p.period,
        required: p.required,
        owned: p.owned,
        covered: p.covered,
        shortfall: p.shortfall,
        surplus: p.surplus,
        status: p.status.clone(),
        shortfall_cost: p.shortfall_cost.clone(),
        surplus_value: p.surplus_value.clone(),
        uncovered,
        excluded,
        license_notes,
        reason,
    }
}

/// Reasons counted, most frequent first (then by text, so the order is stable).
fn counted<'a>(reasons: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<ReasonCount> {
    let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for r in reasons {
        *counts.entry(r).or_default() += 1;
    }
    let mut list: Vec<ReasonCount> = counts
        .into_iter()
        .map(|((reason, short), count)| ReasonCount {
            reason: reason.into(),
            short: short.into(),
            count,
        })
        .collect();
    list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    list
}

pub(crate) use tally_report::model::plural;

/// Every reason of the position in one line: uncovered consumers, licenses that did not
/// count (or idle beside a shortfall), exclusions; for the pooled metrics the peak.
fn reason_line(
    p: &Position,
    uncovered: &ConsumerCounts,
    excluded: &[ReasonCount],
    notes: &[ReasonCount],
) -> String {
    let mut parts = Vec::new();
    if p.status == Status::NotCalculated {
        parts.push(format!(
            "not calculated: {} licenses are a registration",
            p.metric.as_str()
        ));
    }
    for (n, one, many) in [
        (uncovered.devices, "uncovered device", "uncovered devices"),
        (uncovered.users, "uncovered user", "uncovered users"),
        (
            uncovered.custom_values,
            "uncovered custom value",
            "uncovered custom values",
        ),
    ] {
        if n > 0 {
            parts.push(plural(n, one, many));
        }
    }
    if pooled(p.metric) && p.shortfall > 0 {
        parts.push(format!(
            "peak of {} in one hour, {} licensed",
            p.required, p.covered
        ));
    }
    for note in notes {
        parts.push(format!(
            "{} {}",
            plural(note.count, "license", "licenses"),
            note.short
        ));
    }
    for x in excluded {
        parts.push(format!("{} excluded ({})", x.count, x.short));
    }
    parts.join("; ")
}

fn pooled(metric: Metric) -> bool {
    matches!(metric, Metric::ConcurrentUsers | Metric::ConcurrentDevices)
}

/// What one and many of the application's consumers are called: "device", "devices".
fn consumer_word(metric: Metric) -> (&'static str, &'static str) {
    match metric {
        Metric::Users | Metric::ConcurrentUsers => ("user", "users"),
        Metric::CustomCompareValues => ("custom value", "custom values"),
        _ => ("device", "devices"),
    }
}

/// The position in detail: per node, per license and a page of consumers, by name.
pub(crate) fn detail_of(
    app: &Application,
    p: &Position,
    (licenses, customs): (&[License], &[CustomValue]),
    (estate, names): (&Estate, &Names),
    (limit, offset): (i64, i64),
) -> AppDetail {
    let by_node = p
        .by_node
        .iter()
        .map(|n| NodeLine {
            org_node: n.org_node,
            org_node_name: names.node(n.org_node),
            required: n.required,
            covered: n.covered,
        })
        .collect();
    let by_id: HashMap<i64, &License> = licenses.iter().map(|l| (l.id, l)).collect();
    let license_lines = p
        .licenses
        .iter()
        .filter_map(|u| Some(license_line(by_id.get(&u.license_id)?, u, p.metric, names)))
        .collect();
    let who = Who {
        estate,
        names,
        customs,
    };
    let uncovered = p.uncovered.iter().map(|u| ConsumerLine {
        missing: Some(u.missing),
        ..who.line(u.consumer)
    });
    let excluded = p.excluded.iter().map(|x| ConsumerLine {
        reason: Some(x.reason.clone()),
        ..who.line(x.consumer)
    });
    AppDetail {
        position: summary(app, p),
        by_node,
        licenses: license_lines,
        uncovered_consumers: page(uncovered, p.uncovered.len(), (limit, offset)),
        excluded_consumers: page(excluded, p.excluded.len(), (limit, offset)),
    }
}

fn page(
    items: impl Iterator<Item = ConsumerLine>,
    total: usize,
    (limit, offset): (i64, i64),
) -> ConsumerPage {
    let skip = usize::try_from(offset).unwrap_or(usize::MAX);
    let take = usize::try_from(limit).unwrap_or(0);
    ConsumerPage {
        total: total as i64,
        offset,
        limit,
        items: items.skip(skip).take(take).collect(),
    }
}

/// Names consumers.
struct Who<'a> {
    estate: &'a Estate,
    names: &'a Names,
    customs: &'a [CustomValue],
}

impl Who<'_> {
    fn line(&self, consumer: Consumer) -> ConsumerLine {
        let (name, node) = match consumer {
            Consumer::Device(id) => (
                self.names.devices.get(&id).cloned(),
                self.estate.devices.get(&id).and_then(|d| d.org_node),
            ),
            Consumer::User(id) => (
                self.names.users.get(&id).cloned(),
                self.estate.users.get(&id).and_then(|u| u.org_node),
            ),
            Consumer::Custom(i) => (
                Some(format!("custom value {}", i + 1)),
                self.customs.get(i).and_then(|c| c.org_node),
            ),
        };
        let fallback = || match consumer {
            Consumer::Device(id) => format!("device {id}"),
            Consumer::User(id) => format!("user {id}"),
            Consumer::Custom(i) => format!("custom value {}", i + 1),
        };
        ConsumerLine {
            consumer,
            name: name.unwrap_or_else(fallback),
            org_node_name: Some(self.names.node(node)),
            missing: None,
            reason: None,
        }
    }
}

/// The name of what a license is assigned to: its node, computer or user.
pub(crate) fn target_name(license: &License, names: &Names) -> Option<String> {
    let id = license.assigned_to?;
    let found = match license.assignment_type {
        AssignmentType::Organization | AssignmentType::Site => names.nodes.get(&id),
        AssignmentType::Computer => names.devices.get(&id),
        AssignmentType::User => names.users.get(&id),
    };
    Some(found.cloned().unwrap_or_else(|| format!("#{id}")))
}

/// What the license may cover, for its notes: "node Berlin and below".
fn scope(license: &License, target: Option<&str>, word: &str) -> String {
    let target = target.unwrap_or("?");
    match (license.assignment_type, license.assigned_to) {
        (AssignmentType::Organization, None) => "the whole organisation".into(),
        (AssignmentType::Organization, Some(_)) => format!("{word} on node {target} and below"),
        (AssignmentType::Site, _) => format!("{word} on node {target}"),
        (AssignmentType::Computer, _) => format!("computer {target}"),
        (AssignmentType::User, _) => format!("user {target}"),
    }
}

/// `installations × 50, organization Sales`.
pub(crate) fn license_label(license: &License, target: Option<&str>) -> String {
    let assignment = match (license.assignment_type, target) {
        (AssignmentType::Organization, None) => "whole organisation".to_string(),
        (kind, Some(t)) => format!("{} {t}", kind.as_str()),
        (kind, None) => kind.as_str().to_string(),
    };
    format!(
        "{} × {}, {assignment}",
        license.metric.as_str(),
        license.quantity
    )
}

fn license_line(
    license: &License,
    usage: &LicenseUse,
    metric: Metric,
    names: &Names,
) -> LicenseLine {
    let target = target_name(license, names);
    let word = consumer_word(metric);
    let reason = usage
        .note
        .as_ref()
        .map(|n| n.describe(&scope(license, target.as_deref(), word.1), word));
    LicenseLine {
        license_id: license.id,
        label: license_label(license, target.as_deref()),
        metric: license.metric,
        quantity: license.quantity,
        assignment_type: license.assignment_type,
        assigned_to: license.assigned_to,
        assigned_to_name: target,
        valid: usage.valid,
        used: usage.used,
        idle: match usage.valid {
            true => usage.quantity.saturating_sub(usage.used),
            false => 0,
        },
        note: usage.note.clone(),
        reason,
        unit_cost: license.unit_cost_minor.map(|minor| Money {
            minor,
            currency: license.currency.clone().unwrap_or_default(),
        }),
    }
}
