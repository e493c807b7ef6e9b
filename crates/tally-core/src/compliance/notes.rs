//! Why a license did not count, or why its idle units could not cover demand that stayed
//! uncovered: a position never shows a shortfall and idle licenses of the same application
//! without one of these beside the idle license.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{saturating_sum, LicenseUse, Money};
use crate::licenses::{License, Metric};

/// A machine-readable reason beside a license in a position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LicenseNote {
    /// Its validity ended before the as-of day.
    Expired { valid_until: NaiveDate },
    /// Its validity starts after the as-of day.
    NotYetValid { valid_from: NaiveDate },
    /// Bought after the as-of day: not owned on the day asked about.
    BoughtLater { purchase_date: NaiveDate },
    /// Its metric is not one the application's metric accepts (seed 002).
    MetricNotAccepted { application_metric: Metric },
    /// A CAL registers a number of licenses and covers no demand.
    RegistrationOnly,
    /// Units are idle while demand is uncovered, and none of the uncovered demand is within
    /// the license's assignment: `uncovered` consumers lack cover, `on_no_node` of them are
    /// placed on no org node.
    OutOfScope { uncovered: i64, on_no_node: i64 },
    /// A license of another metric covers a device whole (all its cores or processors) or
    /// not at all: the idle units are fewer than any of the `eligible` uncovered devices
    /// within its assignment needs, or those devices are already covered in part.
    WholeDevicesOnly { eligible: i64 },
}

impl LicenseNote {
    /// Whether the license counts nothing on the day (the other notes explain idle units).
    pub fn not_counted(&self) -> bool {
        !matches!(
            self,
            LicenseNote::OutOfScope { .. } | LicenseNote::WholeDevicesOnly { .. }
        )
    }

    /// The note for people; `scope` says what the license may cover, e.g. "devices on node
    /// Berlin", and `word` names one consumer and many ("device", "devices").
    pub fn describe(&self, scope: &str, (one, many): (&str, &str)) -> String {
        match self {
            LicenseNote::Expired { valid_until } => format!("expired on {valid_until}"),
            LicenseNote::NotYetValid { valid_from } => format!("not valid until {valid_from}"),
            LicenseNote::BoughtLater { purchase_date } => {
                format!("bought on {purchase_date}, after the as-of day")
            }
            LicenseNote::MetricNotAccepted { application_metric } => format!(
                "its metric is not accepted by the application's metric {}",
                application_metric.as_str()
            ),
            LicenseNote::RegistrationOnly => "a CAL: registered, covers no demand".into(),
            LicenseNote::OutOfScope {
                uncovered,
                on_no_node,
            } => {
                let (word, verb) = match uncovered {
                    1 => (one, "is"),
                    _ => (many, "are"),
                };
                let placed = match (*on_no_node, *uncovered) {
                    (0, _) => "outside it".to_string(),
                    (n, u) if n == u => "on no org node".to_string(),
                    (n, _) => format!("outside it ({n} on no org node)"),
                };
                format!("covers only {scope}; {uncovered} uncovered {word} {verb} {placed}")
            }
            LicenseNote::WholeDevicesOnly { eligible } => format!(
                "covers whole devices only: its idle units are fewer than each of the \
                 {eligible} uncovered {} within {scope} needs",
                match eligible {
                    1 => one,
                    _ => many,
                }
            ),
        }
    }

    /// A short name of the kind, for counting notes of one kind together.
    pub fn kind(&self) -> &'static str {
        match self {
            LicenseNote::Expired { .. } => "expired",
            LicenseNote::NotYetValid { .. } => "not yet valid",
            LicenseNote::BoughtLater { .. } => "bought after the as-of day",
            LicenseNote::MetricNotAccepted { .. } => "metric not accepted",
            LicenseNote::RegistrationOnly => "CAL (registration only)",
            LicenseNote::OutOfScope { .. } => "idle, uncovered demand outside its assignment",
            LicenseNote::WholeDevicesOnly { .. } => "idle, too few units for a whole device",
        }
    }
}

/// Why a license does not count on `as_of`, if it does not: bought later (a license bought
/// after the day did not exist on the day an auditor asks about), not yet or no longer valid.
pub fn validity_note(license: &License, as_of: NaiveDate) -> Option<LicenseNote> {
    if let Some(purchase_date) = license.purchase_date.filter(|d| *d > as_of) {
        return Some(LicenseNote::BoughtLater { purchase_date });
    }
    if let Some(valid_from) = license.valid_from.filter(|d| *d > as_of) {
        return Some(LicenseNote::NotYetValid { valid_from });
    }
    license
        .valid_until
        .filter(|d| *d < as_of)
        .map(|valid_until| LicenseNote::Expired { valid_until })
}

/// The idle units of valid licenses of the application's metric, each at its own unit cost,
/// summed per currency.
pub fn surplus_value(licenses: &[License], uses: &[LicenseUse], metric: Metric) -> Vec<Money> {
    let by_id: HashMap<i64, &License> = licenses.iter().map(|l| (l.id, l)).collect();
    let mut sums: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for usage in uses.iter().filter(|u| u.valid && u.metric == metric) {
        let idle = usage.quantity.saturating_sub(usage.used);
        let Some(license) = by_id.get(&usage.license_id) else {
            continue;
        };
        if let (Some(cost), true) = (license.unit_cost_minor, idle > 0) {
            let currency = license.currency.clone().unwrap_or_default();
            sums.entry(currency)
                .or_default()
                .push(idle.saturating_mul(cost));
        }
    }
    sums.into_iter()
        .map(|(currency, values)| Money {
            minor: saturating_sum(values),
            currency,
        })
        .collect()
}
