//! `tally apps`, `tally licenses` and `tally compliance`: the licensing read side, over the API.

use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use crate::admin::{urlencode, ApiArgs};
use crate::output::print;

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
        AppsCmd::List => client.get("/api/v1/applications").await?,
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
            let mut body = json!({"name": name, "metric": metric});
            set(&mut body, "publisher", publisher);
            set(&mut body, "period_days", period_days);
            set(&mut body, "total_user_metric", total_user_metric);
            set(&mut body, "software", software);
            set(&mut body, "software_publisher", software_publisher);
            set(&mut body, "software_version", software_version);
            set(&mut body, "metering_rule", metering_rule);
            let app = client
                .call(Method::POST, "/api/v1/applications", Some(&body))
                .await?;
            json!([app])
        }
        AppsCmd::Remove { id } => {
            let path = format!("/api/v1/applications/{id}");
            client.call(Method::DELETE, &path, None).await?;
            eprintln!("removed application {id}");
            return Ok(());
        }
    };
    let rows = rows.as_array().cloned().unwrap_or_default();
    Ok(print(&rows, &columns, api.format)?)
}

/// Puts `value` into the request body under `key` when it was given.
fn set(body: &mut Value, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        body[key] = v.into();
    }
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
        LicensesCmd::List => client.get("/api/v1/licenses").await?,
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
            let mut body = json!({"application": app, "metric": metric, "quantity": quantity,
                "assignment_type": assignment});
            set(&mut body, "assigned_to", to);
            set(&mut body, "purchase_date", purchase_date);
            set(&mut body, "valid_from", valid_from);
            set(&mut body, "valid_until", valid_until);
            set(&mut body, "maintenance_until", maintenance_until);
            set(&mut body, "unit_cost", unit_cost);
            set(&mut body, "currency", currency);
            set(&mut body, "vendor", vendor);
            set(&mut body, "order_reference", order_reference);
            set(&mut body, "notes", notes);
            let license = client
                .call(Method::POST, "/api/v1/licenses", Some(&body))
                .await?;
            json!([license])
        }
        LicensesCmd::Remove { id } => {
            let path = format!("/api/v1/licenses/{id}");
            client.call(Method::DELETE, &path, None).await?;
            eprintln!("removed license {id}");
            return Ok(());
        }
    };
    let rows = rows.as_array().cloned().unwrap_or_default();
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

pub async fn compliance(api: &ApiArgs, app: Option<&str>, as_of: Option<&str>) -> Result<()> {
    let path = with_query("/api/v1/compliance", &[("app", app), ("as_of", as_of)]);
    let rows = api.client()?.get(&path).await?;
    let mut rows = rows.as_array().cloned().unwrap_or_default();
    if api.format == crate::output::Format::Table {
        rows.iter_mut()
            .for_each(|r| flatten_money(r, "shortfall_cost"));
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
    ];
    Ok(print(&rows, &columns, api.format)?)
}

/// The daily snapshots, oldest first, for watching a position move.
pub async fn trend(api: &ApiArgs, app: Option<&str>, since: Option<&str>) -> Result<()> {
    let path = with_query(
        "/api/v1/compliance/snapshots",
        &[("app", app), ("from", since)],
    );
    let rows = api.client()?.get(&path).await?;
    let rows = rows.as_array().cloned().unwrap_or_default();
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

/// `path?k=v&…` with the parameters that are given, encoded.
fn with_query(path: &str, params: &[(&str, Option<&str>)]) -> String {
    let given: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", urlencode(v))))
        .collect();
    format!("{path}?{}", given.join("&"))
}

/// `{"minor": 12990, "currency": "EUR"}` → `"129.90 EUR"` for the table.
fn flatten_money(row: &mut Value, field: &str) {
    let cost = &row[field];
    if let (Some(minor), Some(currency)) = (cost["minor"].as_i64(), cost["currency"].as_str()) {
        let text = format!("{}.{:02} {currency}", minor / 100, minor % 100);
        row[field] = Value::String(text);
    }
}

pub async fn reclaim(api: &ApiArgs, days: u32, as_of: Option<&str>) -> Result<()> {
    let mut path = format!("/api/v1/reclaim?days={days}");
    if let Some(day) = as_of {
        path.push_str(&format!("&as_of={}", urlencode(day)));
    }
    let rows = api.client()?.get(&path).await?;
    let mut rows = rows.as_array().cloned().unwrap_or_default();
    if api.format == crate::output::Format::Table {
        rows.iter_mut().for_each(|r| flatten_money(r, "cost"));
    }
    let columns = [
        "application",
        "host_name",
        "last_used",
        "days_unused",
        "units",
        "cost",
    ];
    Ok(print(&rows, &columns, api.format)?)
}
