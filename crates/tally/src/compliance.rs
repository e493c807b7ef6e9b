//! `tally compliance`: every application's position as a table with a reason per line and a
//! totals row, or one application's in detail (`--app`), by name; `--fail-on under` for
//! scripts and schedulers.

use anyhow::Result;
use serde::Serialize;
use tally_api::{AppDetail, AppPosition};
use tally_core::compliance::{Money, Status};
use tally_core::escape::controls;
use tally_core::licenses::Metric;

use crate::admin::ApiArgs;
use crate::output::{amount, money, print, Format};

/// The exit code of `--fail-on under` when an application is under-licensed.
pub const UNDER_LICENSED_EXIT: u8 = 2;

/// What makes `tally compliance` exit non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Any application under-licensed (a shortfall).
    Under,
}

/// Returned when `--fail-on under` finds a shortfall: the position was printed, the process
/// exits with [`UNDER_LICENSED_EXIT`].
#[derive(Debug)]
pub struct UnderLicensed(String, String);

impl std::fmt::Display for UnderLicensed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} under-licensed: {}", self.0, self.1)
    }
}

impl std::error::Error for UnderLicensed {}

/// What the verb was asked.
pub struct Ask<'a> {
    pub app: Option<&'a str>,
    pub as_of: Option<&'a str>,
    pub fail_on: Option<FailOn>,
    /// Consumers listed by `--app` (limit, offset).
    pub page: (i64, i64),
    /// Only the demand of this site's subtree (the list, or `--app`'s detail).
    pub site: Option<&'a str>,
}

pub async fn compliance(api: &ApiArgs, ask: Ask<'_>) -> Result<()> {
    let client = api.client()?;
    let positions = match (ask.app, api.format) {
        (Some(app), Format::Table | Format::Json) => {
            let detail = client
                .compliance_detail(app, (ask.as_of, ask.site), ask.page)
                .await?;
            match api.format {
                Format::Json => crate::output::print_value(&detail)?,
                _ => print_detail(&detail)?,
            }
            vec![detail.position]
        }
        _ => {
            let rows = client.compliance_in(ask.app, ask.as_of, ask.site).await?;
            match api.format {
                Format::Table => print_table(&rows)?,
                Format::Csv => print(
                    &rows.iter().map(CsvLine::from).collect::<Vec<_>>(),
                    &[],
                    api.format,
                )?,
                Format::Json => print(&rows, &[], api.format)?,
            }
            rows
        }
    };
    fail_on(ask.fail_on, &positions)
}

fn fail_on(fail_on: Option<FailOn>, positions: &[AppPosition]) -> Result<()> {
    let under: Vec<&str> = positions
        .iter()
        .filter(|p| p.status == Status::UnderLicensed)
        .map(|p| p.application.as_str())
        .collect();
    match (fail_on, under.is_empty()) {
        (Some(FailOn::Under), false) => Err(UnderLicensed(
            tally_report::model::plural(under.len() as i64, "application", "applications"),
            under.join(", "),
        )
        .into()),
        _ => Ok(()),
    }
}

/// Sums of money per currency, as `2,150.00 EUR; 30.00 USD`.
fn moneys(list: &[Money]) -> String {
    list.iter().map(money).collect::<Vec<_>>().join("; ")
}

/// A position as the table shows it.
#[derive(Serialize)]
struct Line<'a> {
    application: &'a str,
    metric: &'a str,
    required: String,
    owned: String,
    covered: String,
    shortfall: String,
    surplus: String,
    status: &'a str,
    shortfall_cost: String,
    surplus_value: String,
    reason: &'a str,
}

fn status_text(s: &Status) -> &'static str {
    match s {
        Status::Compliant => "compliant",
        Status::UnderLicensed => "under_licensed",
        Status::OverLicensed => "over_licensed",
        Status::NotCalculated => "not_calculated",
    }
}

/// Every position, one line each with its reason, then one totals line per currency.
fn print_table(rows: &[AppPosition]) -> std::io::Result<()> {
    let mut lines: Vec<Line> = rows
        .iter()
        .map(|p| Line {
            application: &p.application,
            metric: p.metric.as_str(),
            required: p.required.to_string(),
            owned: p.owned.to_string(),
            covered: p.covered.to_string(),
            shortfall: p.shortfall.to_string(),
            surplus: p.surplus.to_string(),
            status: status_text(&p.status),
            shortfall_cost: p.shortfall_cost.as_ref().map(money).unwrap_or_default(),
            surplus_value: moneys(&p.surplus_value),
            reason: &p.reason,
        })
        .collect();
    let totals = tally_api::money_totals(rows);
    for (currency, (short, idle)) in &totals {
        lines.push(Line {
            application: "TOTAL",
            metric: "",
            required: String::new(),
            owned: String::new(),
            covered: String::new(),
            shortfall: String::new(),
            surplus: String::new(),
            status: "",
            shortfall_cost: money(&Money {
                minor: *short,
                currency: currency.clone(),
            }),
            surplus_value: money(&Money {
                minor: *idle,
                currency: currency.clone(),
            }),
            reason: "",
        });
    }
    let columns = [
        "application",
        "metric",
        "required",
        "owned",
        "covered",
        "shortfall",
        "surplus",
        "status",
        "shortfall_cost",
        "surplus_value",
        "reason",
    ];
    print(&lines, &columns, Format::Table)
}

/// A position as one flat CSV row: money as an amount and a currency column, no JSON.
#[derive(Serialize)]
struct CsvLine<'a> {
    application: &'a str,
    publisher: &'a str,
    metric: Metric,
    as_of: chrono::NaiveDate,
    required: i64,
    owned: i64,
    covered: i64,
    shortfall: i64,
    surplus: i64,
    status: Status,
    shortfall_cost: Option<String>,
    shortfall_cost_currency: Option<&'a str>,
    /// One amount per currency, `; ` between (one in all but mixed-currency licenses).
    surplus_value: String,
    surplus_value_currency: String,
    uncovered_devices: i64,
    uncovered_users: i64,
    uncovered_custom_values: i64,
    reason: &'a str,
}

impl<'a> From<&'a AppPosition> for CsvLine<'a> {
    fn from(p: &'a AppPosition) -> Self {
        let values = &p.surplus_value;
        CsvLine {
            application: &p.application,
            publisher: &p.publisher,
            metric: p.metric,
            as_of: p.as_of,
            required: p.required,
            owned: p.owned,
            covered: p.covered,
            shortfall: p.shortfall,
            surplus: p.surplus,
            status: p.status.clone(),
            shortfall_cost: p.shortfall_cost.as_ref().map(|m| amount(m.minor, false)),
            shortfall_cost_currency: p.shortfall_cost.as_ref().map(|m| m.currency.as_str()),
            surplus_value: values
                .iter()
                .map(|m| amount(m.minor, false))
                .collect::<Vec<_>>()
                .join("; "),
            surplus_value_currency: values
                .iter()
                .map(|m| m.currency.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            uncovered_devices: p.uncovered.devices,
            uncovered_users: p.uncovered.users,
            uncovered_custom_values: p.uncovered.custom_values,
            reason: &p.reason,
        }
    }
}

/// One application's position for people: the figures and why, then demand per node, each
/// license with its use, and the uncovered and excluded consumers by name.
fn print_detail(d: &AppDetail) -> std::io::Result<()> {
    let p = &d.position;
    println!(
        "{} ({}): {} on {}, {}",
        controls(&p.application),
        controls(&p.publisher),
        p.metric.as_str(),
        p.as_of,
        status_text(&p.status)
    );
    let cost = p
        .shortfall_cost
        .as_ref()
        .map(|m| format!(" costing {}", money(m)))
        .unwrap_or_default();
    let value = match p.surplus_value.is_empty() {
        true => String::new(),
        false => format!(" worth {}", moneys(&p.surplus_value)),
    };
    println!(
        "required {}, owned {}, covered {}, shortfall {}{cost}, surplus {}{value}",
        p.required, p.owned, p.covered, p.shortfall, p.surplus
    );
    if !p.reason.is_empty() {
        println!("why: {}", controls(&p.reason));
    }
    println!("\nDemand per org node");
    let nodes: Vec<_> = d
        .by_node
        .iter()
        .map(|n| serde_json::json!({"org_node": n.org_node_name, "required": n.required, "covered": n.covered}))
        .collect();
    print(&nodes, &["org_node", "required", "covered"], Format::Table)?;
    println!("\nLicenses");
    let licenses: Vec<_> = d
        .licenses
        .iter()
        .map(|l| {
            serde_json::json!({
                "id": l.license_id,
                "license": l.label,
                "valid": l.valid,
                "used": l.used,
                "idle": l.idle,
                "unit_cost": l.unit_cost.as_ref().map(money),
                "reason": l.reason,
            })
        })
        .collect();
    let columns = [
        "id",
        "license",
        "valid",
        "used",
        "idle",
        "unit_cost",
        "reason",
    ];
    print(&licenses, &columns, Format::Table)?;
    for (title, page, last) in [
        ("Uncovered", &d.uncovered_consumers, "missing"),
        ("Excluded", &d.excluded_consumers, "reason"),
    ] {
        if page.total == 0 {
            continue;
        }
        let shown = page.items.len() as i64;
        println!(
            "\n{title}: {} to {} of {}{}",
            page.offset + 1.min(shown),
            page.offset + shown,
            page.total,
            match page.offset + shown < page.total {
                true => " (more with --offset)",
                false => "",
            }
        );
        let rows: Vec<_> = page
            .items
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "org_node": c.org_node_name,
                    "missing": c.missing,
                    "reason": c.reason,
                })
            })
            .collect();
        print(&rows, &["name", "org_node", last], Format::Table)?;
    }
    Ok(())
}
