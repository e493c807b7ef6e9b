//! `tally apps`, `tally licenses` and `tally compliance`: the licensing read side, over the API.

use anyhow::{bail, Result};
use chrono::NaiveDate;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use serde::Serialize;
use tally_api::{LicensePatch, LicenseView};
use tally_core::import::{ApplicationRow, LicenseRow};
use tally_core::licenses::{AssignmentType, Metric};

use crate::admin::{typed_opt, ApiArgs};
use crate::output::{self, print, print_lines, Format};

#[derive(Subcommand, Debug)]
pub enum AppsCmd {
    /// List applications with their metric (the default).
    List,
    /// Add an application, or change the one of that name.
    Add {
        name: String,
        /// How it is licensed (seed 002's metrics).
        #[arg(long, value_parser = metric_arg(Metric::ALL.to_vec()))]
        metric: Metric,
        #[arg(long)]
        publisher: Option<String>,
        /// A rolling metering period of this many days [default: the calendar month].
        #[arg(long)]
        period_days: Option<u32>,
        /// Which users the users metric counts: metered_users, installation_users, both.
        #[arg(long)]
        total_user_metric: Option<String>,
        /// Installed-software name pattern (`*`, `?`) that recognises it.
        #[arg(long)]
        software: Option<String>,
        #[arg(long)]
        software_publisher: Option<String>,
        #[arg(long)]
        software_version: Option<String>,
        /// A metering rule whose usage is this application's.
        #[arg(long)]
        metering_rule: Option<String>,
    },
    /// Remove an application, by name or id (refused while it has licenses). Positions on
    /// earlier days still show it, and its snapshots stay.
    Remove {
        /// The application's name (any case) or id.
        app: String,
    },
}

/// A value parser offering `allowed` metrics by name (in `--help` and refusals).
fn metric_arg(allowed: Vec<Metric>) -> impl TypedValueParser<Value = Metric> {
    let names = allowed.into_iter().map(|m| PossibleValue::new(m.as_str()));
    PossibleValuesParser::new(names)
        .map(|name| Metric::parse(&name).expect("the parser only passes the metrics it offers"))
}

/// The license metrics: every metric but no_license_required, which no license has.
fn license_metrics() -> Vec<Metric> {
    let mut metrics = Metric::ALL.to_vec();
    metrics.retain(|m| *m != Metric::NoLicenseRequired);
    metrics
}

/// A value parser offering the assignment types by name, `organisation` read as
/// `organization`.
fn assignment_arg() -> impl TypedValueParser<Value = AssignmentType> {
    let names = AssignmentType::ALL.map(|a| match a {
        AssignmentType::Organization => PossibleValue::new(a.as_str()).alias("organisation"),
        _ => PossibleValue::new(a.as_str()),
    });
    PossibleValuesParser::new(names).map(|name| {
        AssignmentType::parse(&name).expect("the parser only passes the types it offers")
    })
}

pub async fn apps(api: &ApiArgs, cmd: Option<AppsCmd>) -> Result<()> {
    let client = api.client()?;
    let columns = ["id", "name", "publisher", "metric", "total_user_metric"];
    let rows = match cmd.unwrap_or(AppsCmd::List) {
        AppsCmd::List => client.applications().await?,
        AppsCmd::Add {
            name,
            metric,
            publisher,
            period_days,
            total_user_metric,
            software,
            software_publisher,
            software_version,
            metering_rule,
        } => {
            let row = ApplicationRow {
                name,
                publisher: publisher.unwrap_or_default(),
                metric,
                period_days,
                total_user_metric: typed_opt("total_user_metric", total_user_metric)?,
                software,
                software_publisher,
                software_version,
                metering_rule,
            };
            vec![client.put_application(&row).await?]
        }
        AppsCmd::Remove { app } => {
            let apps = client.applications().await?;
            let found = apps
                .iter()
                .find(|a| a.application.name.eq_ignore_ascii_case(&app))
                .or_else(|| {
                    let id: i64 = app.parse().ok()?;
                    apps.iter().find(|a| a.application.id == id)
                });
            let Some(found) = found else {
                bail!(
                    "no application named {:?}; see tally apps",
                    tally_core::escape::controls(&app)
                );
            };
            client.delete_application(found.application.id).await?;
            eprintln!(
                "removed application {} (id {}); positions on earlier days still show it",
                tally_core::escape::controls(&found.application.name),
                found.application.id
            );
            return Ok(());
        }
    };
    Ok(print(&rows, &columns, api.format)?)
}

// Parsed once per run: the size of the `add` variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum LicensesCmd {
    /// List the licenses there are now (the default), with their application, what they are
    /// assigned to, unit cost, validity and maintenance.
    List,
    /// Register a license; refused, naming the allowed values, when the application's metric
    /// does not accept the license's metric or the metric does not allow the assignment.
    /// Accepted with a warning when some of it can never be used.
    Add {
        /// The application's name.
        #[arg(long)]
        app: String,
        /// The unit the license counts (it must be one the application's metric accepts).
        #[arg(long, value_parser = metric_arg(license_metrics()))]
        metric: Metric,
        /// How many units of the metric were bought (0 or more).
        #[arg(long, allow_negative_numbers = true)]
        quantity: i64,
        /// Whom it covers: an org node and below (organization), one node (site), one
        /// computer, one user.
        #[arg(long, value_parser = assignment_arg())]
        assignment: AssignmentType,
        #[command(flatten)]
        terms: Terms,
    },
    /// Change a license's terms, with the same checks as add; what is not given stays. The
    /// change applies to past positions too; to keep old terms there, remove and add instead.
    Edit {
        /// The license's id (see tally licenses).
        id: i64,
        #[arg(long, value_parser = metric_arg(license_metrics()))]
        metric: Option<Metric>,
        /// How many units of the metric were bought (0 or more).
        #[arg(long, allow_negative_numbers = true)]
        quantity: Option<i64>,
        /// A new assignment type; without --to it is assigned to nothing (for organization:
        /// the whole organisation).
        #[arg(long, value_parser = assignment_arg())]
        assignment: Option<AssignmentType>,
        #[command(flatten)]
        terms: Terms,
    },
    /// Licenses whose validity or maintenance ends within the given days, soonest first.
    Expiring {
        /// How many days ahead, today included.
        #[arg(long, default_value = "90", allow_negative_numbers = true)]
        days: i64,
    },
    /// Remove a license by id: it stops counting now; positions on earlier days still count it.
    Remove { id: i64 },
}

/// A license's terms besides metric, quantity and assignment; an empty text clears one when
/// editing.
#[derive(Args, Debug)]
pub struct Terms {
    /// The org node, computer (host name) or user (account) it is assigned to; none for
    /// an organisation license on the whole organisation.
    #[arg(long)]
    to: Option<String>,
    /// YYYY-MM-DD.
    #[arg(long)]
    purchase_date: Option<String>,
    /// The first day it counts (YYYY-MM-DD) [default: always].
    #[arg(long)]
    valid_from: Option<String>,
    /// The last day it counts (YYYY-MM-DD) [default: perpetual].
    #[arg(long)]
    valid_until: Option<String>,
    /// The last day of maintenance (YYYY-MM-DD).
    #[arg(long)]
    maintenance_until: Option<String>,
    /// Price of one unit, e.g. 129.90.
    #[arg(long)]
    unit_cost: Option<String>,
    /// The price's currency, e.g. EUR.
    #[arg(long)]
    currency: Option<String>,
    /// Whom it was bought from.
    #[arg(long)]
    vendor: Option<String>,
    /// The purchase order or contract it was bought under.
    #[arg(long)]
    order_reference: Option<String>,
    /// Anything else worth keeping with it.
    #[arg(long)]
    notes: Option<String>,
}

impl Terms {
    /// The terms as a patch (dates read as the server reads them).
    fn patch(self) -> Result<LicensePatch> {
        Ok(LicensePatch {
            assigned_to: self.to,
            purchase_date: typed_opt("purchase_date", self.purchase_date)?,
            valid_from: typed_opt("valid_from", self.valid_from)?,
            valid_until: typed_opt("valid_until", self.valid_until)?,
            maintenance_until: typed_opt("maintenance_until", self.maintenance_until)?,
            unit_cost: self.unit_cost,
            currency: self.currency,
            vendor: self.vendor,
            order_reference: self.order_reference,
            notes: self.notes,
            ..LicensePatch::default()
        })
    }
}

/// A license as the table shows it: names, money with its currency, its dates.
#[derive(Serialize)]
struct LicenseLine<'a> {
    id: i64,
    application: &'a str,
    metric: Metric,
    quantity: i64,
    assigned_to: String,
    unit_cost: Option<String>,
    valid_from: Option<NaiveDate>,
    valid_until: Option<NaiveDate>,
    maintenance_until: Option<NaiveDate>,
}

impl<'a> From<&'a LicenseView> for LicenseLine<'a> {
    fn from(v: &'a LicenseView) -> Self {
        let l = &v.license;
        let assigned_to = match (&v.assigned_to_name, l.assignment_type) {
            (None, AssignmentType::Organization) => "whole organisation".to_string(),
            (None, kind) => format!("{} (none)", kind.as_str()),
            (Some(name), kind) => format!("{} {name}", kind.as_str()),
        };
        let currency = l.currency.as_deref().unwrap_or_default();
        LicenseLine {
            id: l.id,
            application: &v.application,
            metric: l.metric,
            quantity: l.quantity,
            assigned_to,
            unit_cost: l.unit_cost_minor.map(|c| output::money_text(c, currency)),
            valid_from: l.valid_from,
            valid_until: l.valid_until,
            maintenance_until: l.maintenance_until,
        }
    }
}

const LICENSE_COLUMNS: [&str; 9] = [
    "id",
    "application",
    "metric",
    "quantity",
    "assigned_to",
    "unit_cost",
    "valid_from",
    "valid_until",
    "maintenance_until",
];

pub async fn licenses(api: &ApiArgs, cmd: Option<LicensesCmd>) -> Result<()> {
    let client = api.client()?;
    let saved = match cmd.unwrap_or(LicensesCmd::List) {
        LicensesCmd::List => {
            let rows = client.licenses().await?;
            return Ok(print_lines(
                &rows,
                &LICENSE_COLUMNS,
                api.format,
                LicenseLine::from,
            )?);
        }
        LicensesCmd::Add {
            app,
            metric,
            quantity,
            assignment,
            terms,
        } => {
            let terms = terms.patch()?;
            let row = LicenseRow {
                assigned_to: terms.assigned_to,
                purchase_date: terms.purchase_date,
                valid_from: terms.valid_from,
                valid_until: terms.valid_until,
                maintenance_until: terms.maintenance_until,
                unit_cost: terms.unit_cost,
                currency: terms.currency,
                vendor: terms.vendor,
                order_reference: terms.order_reference,
                notes: terms.notes,
                ..LicenseRow::new(app, metric, quantity, assignment)
            };
            client.add_license(&row).await?
        }
        LicensesCmd::Edit {
            id,
            metric,
            quantity,
            assignment,
            terms,
        } => {
            let patch = LicensePatch {
                metric,
                quantity,
                assignment_type: assignment,
                ..terms.patch()?
            };
            client.edit_license(id, &patch).await?
        }
        LicensesCmd::Expiring { days } => {
            let rows = client.expiring_licenses(&days.to_string()).await?;
            let columns = ["ends_on", "days_left", "ends", "application", "label"];
            return Ok(print(&rows, &columns, api.format)?);
        }
        LicensesCmd::Remove { id } => {
            client.delete_license(id).await?;
            eprintln!("removed license {id}; positions on earlier days still count it");
            return Ok(());
        }
    };
    for warning in &saved.warnings {
        eprintln!("warning: {}", tally_core::escape::controls(warning));
    }
    let shown = [saved];
    match api.format {
        Format::Table => {
            let lines: Vec<LicenseLine> = shown.iter().map(|s| (&s.license).into()).collect();
            Ok(print(&lines, &LICENSE_COLUMNS, api.format)?)
        }
        _ => Ok(print(&shown, &LICENSE_COLUMNS, api.format)?),
    }
}

/// The daily snapshots, oldest first, for watching a position move; at a parent, with `site`,
/// those days computed again over that site's subtree.
pub async fn trend(
    api: &ApiArgs,
    app: Option<&str>,
    since: Option<&str>,
    site: Option<&str>,
) -> Result<()> {
    let rows = api.client()?.snapshots(app, since, site).await?;
    let columns = [
        "day",
        "application",
        "required",
        "owned",
        "covered",
        "shortfall",
        "surplus",
        "status",
    ];
    Ok(print(&rows, &columns, api.format)?)
}
