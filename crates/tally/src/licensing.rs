//! `tally apps`, `tally licenses` and `tally compliance`: the licensing read side, over the API.

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde::Serialize;
use tally_api::Reclaimable;
use tally_core::compliance::Money;
use tally_core::import::{ApplicationRow, LicenseRow};

use crate::admin::{typed, typed_opt, ApiArgs};
use crate::output::{print, print_lines};

#[derive(Subcommand, Debug)]
pub enum AppsCmd {
    /// List applications with their metric (the default).
    List,
    /// Add an application, or change the one of that name.
    Add {
        name: String,
        /// How it is licensed: installations, processors, processor_cores, pvu, users,
        /// devices, concurrent_users, concurrent_devices, custom_compare_values, cal,
        /// no_license_required.
        #[arg(long)]
        metric: String,
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
    /// Delete an application (refused while it has licenses).
    Remove { id: i64 },
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
                metric: typed("metric", &metric)?,
                period_days,
                total_user_metric: typed_opt("total_user_metric", total_user_metric)?,
                software,
                software_publisher,
                software_version,
                metering_rule,
            };
            vec![client.put_application(&row).await?]
        }
        AppsCmd::Remove { id } => {
            client.delete_application(id).await?;
            eprintln!("removed application {id}");
            return Ok(());
        }
    };
    Ok(print(&rows, &columns, api.format)?)
}

// Parsed once per run: the size of the `add` variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum LicensesCmd {
    /// List registered licenses (the default).
    List,
    /// Register a license; refused, naming the allowed values, when the application's metric
    /// does not accept the license's metric or the metric does not allow the assignment.
    Add {
        /// The application's name.
        #[arg(long)]
        app: String,
        #[arg(long)]
        metric: String,
        #[arg(long)]
        quantity: i64,
        /// organization, site, computer, datacenter or user.
        #[arg(long)]
        assignment: String,
        /// The org node, computer (host name) or user (account) it is assigned to; none for
        /// an organisation license on the whole organisation.
        #[arg(long)]
        to: Option<String>,
        /// YYYY-MM-DD.
        #[arg(long)]
        purchase_date: Option<String>,
        #[arg(long)]
        valid_from: Option<String>,
        #[arg(long)]
        valid_until: Option<String>,
        #[arg(long)]
        maintenance_until: Option<String>,
        /// Price of one unit, e.g. 129.90.
        #[arg(long)]
        unit_cost: Option<String>,
        #[arg(long)]
        currency: Option<String>,
        #[arg(long)]
        vendor: Option<String>,
        #[arg(long)]
        order_reference: Option<String>,
        #[arg(long)]
        notes: Option<String>,
    },
    /// Delete a license by id.
    Remove { id: i64 },
}

pub async fn licenses(api: &ApiArgs, cmd: Option<LicensesCmd>) -> Result<()> {
    let client = api.client()?;
    let rows = match cmd.unwrap_or(LicensesCmd::List) {
        LicensesCmd::List => client.licenses().await?,
        LicensesCmd::Add {
            app,
            metric,
            quantity,
            assignment,
            to,
            purchase_date,
            valid_from,
            valid_until,
            maintenance_until,
            unit_cost,
            currency,
            vendor,
            order_reference,
            notes,
        } => {
            let row = LicenseRow {
                application: app,
                metric: typed("metric", &metric)?,
                quantity,
                assignment_type: typed("assignment_type", &assignment)?,
                assigned_to: to,
                purchase_date: typed_opt("purchase_date", purchase_date)?,
                valid_from: typed_opt("valid_from", valid_from)?,
                valid_until: typed_opt("valid_until", valid_until)?,
                maintenance_until: typed_opt("maintenance_until", maintenance_until)?,
                unit_cost,
                currency,
                vendor,
                order_reference,
                notes,
            };
            vec![client.add_license(&row).await?]
        }
        LicensesCmd::Remove { id } => {
            client.delete_license(id).await?;
            eprintln!("removed license {id}");
            return Ok(());
        }
    };
    let columns = [
        "id",
        "application_id",
        "metric",
        "quantity",
        "assignment_type",
        "assigned_to",
        "valid_until",
        "unit_cost_minor",
        "currency",
    ];
    Ok(print(&rows, &columns, api.format)?)
}

/// The daily snapshots, oldest first, for watching a position move.
pub async fn trend(api: &ApiArgs, app: Option<&str>, since: Option<&str>) -> Result<()> {
    let rows = api.client()?.snapshots(app, since).await?;
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

/// `{"minor": 12990, "currency": "EUR"}` → `"129.90 EUR"` for the table.
fn money_text(cost: &Money) -> String {
    crate::output::money(cost)
}

/// An idle installation as the table shows it, its cost as text.
#[derive(Serialize)]
struct ReclaimLine<'a> {
    application: &'a str,
    host_name: &'a str,
    last_used: Option<DateTime<Utc>>,
    days_unused: Option<i64>,
    units: i64,
    cost: Option<String>,
}

impl<'a> From<&'a Reclaimable> for ReclaimLine<'a> {
    fn from(r: &'a Reclaimable) -> Self {
        ReclaimLine {
            application: &r.application,
            host_name: &r.host_name,
            last_used: r.last_used,
            days_unused: r.days_unused,
            units: r.units,
            cost: r.cost.as_ref().map(money_text),
        }
    }
}

pub async fn reclaim(api: &ApiArgs, days: u32, as_of: Option<&str>) -> Result<()> {
    let rows = api.client()?.reclaim(days, as_of).await?;
    let columns = [
        "application",
        "host_name",
        "last_used",
        "days_unused",
        "units",
        "cost",
    ];
    Ok(print_lines(&rows, &columns, api.format, ReclaimLine::from)?)
}
