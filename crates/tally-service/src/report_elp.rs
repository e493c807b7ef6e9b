//! The Effective License Position report: the document an auditor or a buyer asks for. One
//! line per application (and per further currency of its licenses) with the metric, required,
//! owned, covered, shortfall and its cost, surplus and its value, the status and the reasons;
//! a total line per currency; the licenses and maintenance that end within the given days in
//! the notes. Money is an amount column and a currency column, so the CSV is flat.

use chrono::{Duration, NaiveDate};
use tally_api::AppPosition;
use tally_core::compliance::Status;
use tally_core::License;
use tally_report::catalogue::Params;
use tally_report::{Cell, Column, Report};
use tally_store::prelude::*;

use crate::compliance::compute_named;
use crate::compliance_text::{license_label, plural, target_name, Names};
use crate::Result;

/// The ELP report; with `keep`, the demand of those devices only (a parent's `site=`).
pub(crate) async fn build(
    store: &dyn Store,
    params: &Params,
    keep: Option<&std::collections::HashSet<i64>>,
    report: &mut Report,
) -> Result<()> {
    let as_of = params.date("as-of");
    let days = params.integer("days");
    report.columns = vec![
        Column::text("application", "Application"),
        Column::text("metric", "Metric"),
        Column::number("required", "Required"),
        Column::number("owned", "Owned"),
        Column::number("covered", "Covered"),
        Column::number("shortfall", "Shortfall"),
        Column::number("shortfall_cost", "Shortfall cost"),
        Column::number("surplus", "Surplus"),
        Column::number("surplus_value", "Surplus value"),
        Column::text("currency", "Currency"),
        Column::text("status", "Status"),
        Column::text("reason", "Reasons"),
    ];
    let (positions, names) = compute_named(store, as_of, None, keep).await?;
    for p in &positions {
        report.rows.extend(rows_of(p));
    }
    for (currency, (cost, value)) in tally_api::money_totals(&positions) {
        report.rows.push(vec![
            Cell::text(format!("Total ({currency})")),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            amount(cost),
            Cell::Empty,
            amount(value),
            Cell::text(currency),
            Cell::Empty,
            Cell::Empty,
        ]);
    }
    let under = positions
        .iter()
        .filter(|p| p.status == Status::UnderLicensed)
        .count();
    report.notes.push(format!(
        "Position at the end of {as_of}: {under} of {} under-licensed. Money: shortfall at \
         the newest license's unit cost, surplus at each idle license's own.",
        plural(positions.len() as i64, "application", "applications")
    ));
    let apps: Vec<(i64, String)> = positions
        .iter()
        .map(|p| (p.application_id, p.application.clone()))
        .collect();
    report
        .notes
        .extend(ending(&store.licenses().await?, &apps, &names, as_of, days));
    Ok(())
}

fn amount(minor: i64) -> Cell {
    Cell::num(minor as f64 / 100.0)
}

fn status_text(s: &Status) -> &'static str {
    match s {
        Status::Compliant => "compliant",
        Status::UnderLicensed => "under-licensed",
        Status::OverLicensed => "over-licensed",
        Status::NotCalculated => "not calculated",
    }
}

/// The application's line, in the currency of its shortfall (else of its first surplus
/// value), and a line of its own for each further currency of surplus value.
fn rows_of(p: &AppPosition) -> Vec<Vec<Cell>> {
    let currency = p
        .shortfall_cost
        .as_ref()
        .or(p.surplus_value.first())
        .map(|m| m.currency.clone());
    let value_in = |c: &Option<String>| -> Cell {
        p.surplus_value
            .iter()
            .find(|m| Some(&m.currency) == c.as_ref())
            .map_or(Cell::Empty, |m| amount(m.minor))
    };
    let mut rows = vec![vec![
        Cell::text(&p.application),
        Cell::text(p.metric.as_str()),
        Cell::Int(p.required),
        Cell::Int(p.owned),
        Cell::Int(p.covered),
        Cell::Int(p.shortfall),
        p.shortfall_cost
            .as_ref()
            .map_or(Cell::Empty, |m| amount(m.minor)),
        Cell::Int(p.surplus),
        value_in(&currency),
        currency.clone().map_or(Cell::Empty, Cell::Text),
        Cell::text(status_text(&p.status)),
        Cell::text(&p.reason),
    ]];
    for other in p
        .surplus_value
        .iter()
        .filter(|m| Some(&m.currency) != currency.as_ref())
    {
        let mut row = vec![Cell::Empty; 12];
        row[0] = Cell::text(&p.application);
        row[8] = amount(other.minor);
        row[9] = Cell::text(&other.currency);
        row[11] = Cell::text("surplus value in a further currency");
        rows.push(row);
    }
    rows
}

/// One note per license whose validity or maintenance ends within `days` after `as_of`
/// (or ended on it), soonest first; a sentence saying none do otherwise.
fn ending(
    licenses: &[License],
    apps: &[(i64, String)],
    names: &Names,
    as_of: NaiveDate,
    days: i64,
) -> Vec<String> {
    let until = as_of + Duration::days(days);
    let within = |d: Option<NaiveDate>| d.filter(|d| (as_of..=until).contains(d));
    let mut found: Vec<(NaiveDate, String)> = Vec::new();
    for l in licenses {
        let app = apps
            .iter()
            .find(|(id, _)| *id == l.application_id)
            .map_or("?", |(_, n)| n.as_str());
        let label = license_label(l, target_name(l, names).as_deref());
        for (what, day) in [
            ("license valid until", within(l.valid_until)),
            ("maintenance until", within(l.maintenance_until)),
        ] {
            if let Some(day) = day {
                let text = format!("{app}, license {} ({label}): {what} {day}", l.id);
                found.push((day, text));
            }
        }
    }
    found.sort();
    let head = match found.len() {
        0 => format!("No license or maintenance ends within {days} days of {as_of}."),
        n => format!(
            "Ending within {days} days of {as_of} ({}):",
            plural(n as i64, "entry", "entries")
        ),
    };
    std::iter::once(head)
        .chain(found.into_iter().map(|(_, t)| format!("- {t}")))
        .collect()
}
