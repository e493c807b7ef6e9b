//! What a batch may load but a person should hear about: licenses whose quantity can never be
//! used in full, and licenses priced in another currency than their application's others.
//! These are accepted (the purchase happened) with a warning that says what will happen.

use std::collections::HashMap;

use super::{Batch, ImportError, Known, LicenseRow};
use crate::licenses::{AssignmentType, Metric};

/// Every warning about the batch's licenses, in the batch's order. The batch has passed
/// [`super::validate`].
pub fn warnings(batch: &Batch, known: &Known) -> Vec<ImportError> {
    let mut out = Vec::new();
    // The currency each application is priced in: its stored licenses', else the first one
    // this batch gives it.
    let mut first: HashMap<&str, &str> = HashMap::new();
    for (_, row) in &batch.licenses {
        if let Some(currency) = currency(row) {
            first.entry(row.application.as_str()).or_insert(currency);
        }
    }
    for (origin, row) in &batch.licenses {
        let mut warn = |field: &str, message: String| {
            out.push(ImportError {
                origin: origin.clone(),
                field: field.into(),
                message,
            })
        };
        if let Some(message) = quantity_warning(row) {
            warn("quantity", message);
        }
        let reference: Vec<&str> = match known.license_currencies.get(&row.application) {
            Some(stored) if !stored.is_empty() => stored.iter().map(String::as_str).collect(),
            _ => first
                .get(row.application.as_str())
                .copied()
                .into_iter()
                .collect(),
        };
        if let Some(message) = currency_warning(row, &reference) {
            warn("currency", message);
        }
    }
    out
}

/// The license's currency, as written, when it has one.
fn currency(row: &LicenseRow) -> Option<&str> {
    row.currency
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
}

/// Why some of the license's units can never cover anything, if so.
fn quantity_warning(row: &LicenseRow) -> Option<String> {
    if row.quantity == 0 {
        return Some(
            "quantity 0 covers nothing: the license is registered but counts for no installation, \
             user or device; give the number of units bought"
                .into(),
        );
    }
    let one = match (row.assignment_type, row.metric) {
        (AssignmentType::Computer, Metric::Installations) => {
            "the one installation on that computer"
        }
        (AssignmentType::User, Metric::Users | Metric::ConcurrentUsers) => "that one user",
        _ => return None,
    };
    (row.quantity > 1).then(|| {
        let target = row.assigned_to.as_deref().unwrap_or_default();
        format!(
            "this {} license is assigned to {} {target:?} and covers {one}: 1 of its {} units \
             can be used, {} never; assign it to an org node to share it, or lower the quantity",
            row.metric.as_str(),
            row.assignment_type.as_str(),
            row.quantity,
            row.quantity - 1
        )
    })
}

/// Why the license's currency stands apart from the application's other licenses, if so.
fn currency_warning(row: &LicenseRow, reference: &[&str]) -> Option<String> {
    let mine = currency(row)?;
    if reference.is_empty() || reference.iter().any(|c| c.eq_ignore_ascii_case(mine)) {
        return None;
    }
    let mut others = reference.to_vec();
    others.sort_unstable();
    others.dedup();
    Some(format!(
        "{mine} differs from the currency of {:?}'s other licenses ({}): costs in different \
         currencies are shown apart and never added together",
        row.application,
        others.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Origin;

    fn at(line: usize) -> Origin {
        Origin {
            file: "licenses.csv".into(),
            line,
        }
    }

    fn license(metric: Metric, quantity: i64, assignment: AssignmentType, to: &str) -> LicenseRow {
        LicenseRow {
            assigned_to: (!to.is_empty()).then(|| to.to_string()),
            currency: Some("EUR".into()),
            ..LicenseRow::new("Office", metric, quantity, assignment)
        }
    }

    #[test]
    fn unusable_quantities_and_other_currencies_are_named_per_row() {
        use AssignmentType as A;
        use Metric as M;
        let known = Known {
            license_currencies: [("Office".to_string(), vec!["EUR".to_string()])].into(),
            ..Default::default()
        };
        let usd = LicenseRow {
            currency: Some("USD".into()),
            ..license(M::Installations, 5, A::Organization, "")
        };
        let batch = Batch {
            licenses: vec![
                (at(2), license(M::Installations, 2, A::Computer, "pc1")),
                (at(3), license(M::Installations, 0, A::Organization, "")),
                (at(4), usd),
                (at(5), license(M::Installations, 1, A::Computer, "pc2")),
                (at(6), license(M::ProcessorCores, 8, A::Computer, "pc2")),
                (at(7), license(M::Users, 3, A::User, "ann")),
            ],
            ..Default::default()
        };
        let found: Vec<String> = warnings(&batch, &known)
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].starts_with("licenses.csv:2: quantity: this installations license is assigned to computer \"pc1\" and covers the one installation on that computer: 1 of its 2 units can be used, 1 never"), "{}", found[0]);
        assert!(
            found[1].starts_with("licenses.csv:3: quantity: quantity 0 covers nothing"),
            "{}",
            found[1]
        );
        assert!(found[2].starts_with("licenses.csv:4: currency: USD differs from the currency of \"Office\"'s other licenses (EUR)"), "{}", found[2]);
        assert!(found[3].starts_with("licenses.csv:7: quantity: this users license is assigned to user \"ann\" and covers that one user"), "{}", found[3]);

        // With nothing stored, the file's first currency is the application's.
        let fresh = warnings(&batch, &Known::default());
        let currency: Vec<_> = fresh.iter().filter(|w| w.field == "currency").collect();
        assert_eq!(currency.len(), 1, "{fresh:#?}");
        assert_eq!(currency[0].origin.line, 4);
    }
}
