//! Allocation: which licenses cover which units of demand, in the order seed 002's assignment
//! types set (computer and user licenses, then site, then organisation licenses from the
//! deepest node up), and the totals that follow from it.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::{
    device_measure, saturating_sum, unused, AppFacts, Estate, LicenseNote, LicenseUse, NodeFigures,
    Pooled, Uncovered, Unit,
};
use crate::licenses::{AssignmentType, License, Metric};

/// Order of consumption: computer and user licenses, then site, then organisation licenses
/// from the deepest node up; a whole-organisation license (no node) last.
pub(super) fn priority(estate: &Estate, license: &License) -> (u8, std::cmp::Reverse<usize>, i64) {
    let tier = match license.assignment_type {
        AssignmentType::Computer | AssignmentType::User => 0,
        AssignmentType::Site => 1,
        AssignmentType::Organization if license.assigned_to.is_some() => 2,
        AssignmentType::Organization => 3,
    };
    let depth = license
        .assigned_to
        .filter(|_| license.assignment_type == AssignmentType::Organization)
        .map(|n| estate.org.depth(n))
        .unwrap_or(0);
    (tier, std::cmp::Reverse(depth), license.id)
}

pub(super) fn eligible(estate: &Estate, license: &License, unit: &Unit) -> bool {
    let target = license.assigned_to;
    match license.assignment_type {
        AssignmentType::Computer => unit.device.is_some() && unit.device == target,
        AssignmentType::User => unit.user.is_some() && unit.user == target,
        AssignmentType::Site => unit.node.is_some() && unit.node == target,
        // A license on the root of the tree is the whole organisation's: it covers demand
        // placed on no node too (freshly enrolled devices, a value for the whole company).
        AssignmentType::Organization => match (target, unit.node) {
            (None, _) => true,
            (Some(top), Some(node)) => estate.org.within(node, top),
            (Some(top), None) => estate.org.is_root(top),
        },
    }
}

pub(super) fn allocate(
    estate: &Estate,
    facts: &AppFacts,
    as_of: NaiveDate,
    units: &mut [Unit],
) -> Vec<LicenseUse> {
    let app_metric = facts.application.metric;
    let accepted = app_metric.accepted_license_metrics();
    let mut order: Vec<&License> = facts.licenses.iter().collect();
    order.sort_by_key(|l| priority(estate, l));
    let mut uses = Vec::new();
    for license in &order {
        let license = *license;
        let mut usage = unused(license, as_of);
        if usage.valid && !accepted.contains(&license.metric) {
            usage.note = Some(LicenseNote::MetricNotAccepted {
                application_metric: app_metric,
            });
        } else if usage.valid && license.metric == Metric::Cal {
            usage.note = Some(LicenseNote::RegistrationOnly);
        }
        let counts = usage.note.is_none();
        let mut capacity = if counts { license.quantity } else { 0 };
        for unit in units.iter_mut().filter(|u| u.left > 0) {
            if capacity == 0 {
                break;
            }
            if !eligible(estate, license, unit) {
                continue;
            }
            capacity -= consume(estate, license.metric, app_metric, unit, capacity);
        }
        usage.used = if counts {
            license.quantity - capacity
        } else {
            0
        };
        uses.push(usage);
    }
    for (usage, license) in uses.iter_mut().zip(&order) {
        if usage.note.is_none() && usage.used < usage.quantity {
            usage.note = idle_note(estate, license, units);
        }
    }
    uses.sort_by_key(|u| u.license_id);
    uses
}

/// Why a counting license's idle units did not cover demand that stayed uncovered: none of
/// it is within the license's assignment, or it converts whole devices only. `None` when
/// nothing is uncovered.
fn idle_note(estate: &Estate, license: &License, units: &[Unit]) -> Option<LicenseNote> {
    let uncovered: Vec<&Unit> = units.iter().filter(|u| u.left > 0).collect();
    if uncovered.is_empty() {
        return None;
    }
    let eligible = uncovered
        .iter()
        .filter(|u| eligible(estate, license, u))
        .count() as i64;
    Some(match eligible {
        0 => LicenseNote::OutOfScope {
            uncovered: uncovered.len() as i64,
            on_no_node: uncovered.iter().filter(|u| u.node.is_none()).count() as i64,
        },
        eligible => LicenseNote::WholeDevicesOnly { eligible },
    })
}

/// Covers what `capacity` of a `license_metric` license can of `unit`; returns the license
/// units consumed. The same metric covers part of a unit; another metric covers the whole
/// device (all its processors or cores) or nothing.
pub(super) fn consume(
    estate: &Estate,
    license_metric: Metric,
    app_metric: Metric,
    unit: &mut Unit,
    capacity: i64,
) -> i64 {
    if license_metric == app_metric {
        let take = capacity.min(unit.left);
        unit.left -= take;
        return take;
    }
    let measure = unit
        .device
        .and_then(|d| estate.devices.get(&d))
        .and_then(|d| device_measure(d, license_metric));
    match measure {
        Some(need) if unit.left == unit.need && need <= capacity => {
            unit.left = 0;
            need
        }
        _ => 0,
    }
}

pub(super) type Figures = (i64, i64, Vec<NodeFigures>, Vec<Uncovered>);

pub(super) fn unit_totals(units: &[Unit]) -> Figures {
    let mut nodes: BTreeMap<Option<i64>, (i64, i64)> = BTreeMap::new();
    let mut uncovered = Vec::new();
    for u in units {
        let entry = nodes.entry(u.node).or_default();
        entry.0 = entry.0.saturating_add(u.need);
        entry.1 = entry.1.saturating_add(u.need - u.left);
        if u.left > 0 {
            uncovered.push(Uncovered {
                consumer: u.consumer,
                missing: u.left,
            });
        }
    }
    let required = saturating_sum(units.iter().map(|u| u.need));
    let covered = saturating_sum(units.iter().map(|u| u.need - u.left));
    let by_node = nodes
        .into_iter()
        .map(|(org_node, (required, covered))| NodeFigures {
            org_node,
            required,
            covered,
        })
        .collect();
    (required, covered, by_node, uncovered)
}

/// Concurrent licenses form one pool per application, drawn on in the usual order up to the
/// peak.
pub(super) fn allocate_pool(
    estate: &Estate,
    facts: &AppFacts,
    as_of: NaiveDate,
    peak: i64,
) -> Vec<LicenseUse> {
    let mut order: Vec<&License> = facts.licenses.iter().collect();
    order.sort_by_key(|l| priority(estate, l));
    let mut left = peak;
    let mut uses: Vec<LicenseUse> = order
        .into_iter()
        .map(|l| {
            let mut usage = unused(l, as_of);
            let metric = facts.application.metric;
            if usage.valid && l.metric == metric {
                usage.used = l.quantity.min(left);
                left -= usage.used;
            } else if usage.valid {
                usage.note = Some(LicenseNote::MetricNotAccepted {
                    application_metric: metric,
                });
            }
            usage
        })
        .collect();
    uses.sort_by_key(|u| u.license_id);
    uses
}

/// Concurrent licenses form one pool per application: they cover the peak up to their sum.
pub(super) fn pooled_totals(pool: Pooled, uses: &[LicenseUse], metric: Metric) -> Figures {
    let owned = saturating_sum(
        uses.iter()
            .filter(|u| u.valid && u.metric == metric)
            .map(|u| u.quantity),
    );
    let covered = pool.required.min(owned);
    let by_node = pool
        .by_node
        .into_iter()
        .map(|n| NodeFigures {
            covered: n.required.min(owned),
            ..n
        })
        .collect();
    (pool.required, covered, by_node, Vec::new())
}
