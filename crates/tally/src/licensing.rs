//! `tally apps`, `tally licenses` and `tally compliance`: the licensing read side, over the API.

use anyhow::Result;
use serde_json::Value;

use crate::admin::{urlencode, ApiArgs};
use crate::output::print;

pub async fn apps(api: &ApiArgs) -> Result<()> {
    let rows = api.client()?.get("/api/v1/applications").await?;
    let rows = rows.as_array().cloned().unwrap_or_default();
    let columns = ["id", "name", "publisher", "metric", "total_user_metric"];
    Ok(print(&rows, &columns, api.format)?)
}

pub async fn licenses(api: &ApiArgs) -> Result<()> {
    let rows = api.client()?.get("/api/v1/licenses").await?;
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
    let mut query = Vec::new();
    if let Some(app) = app {
        query.push(format!("app={}", urlencode(app)));
    }
    if let Some(day) = as_of {
        query.push(format!("as_of={}", urlencode(day)));
    }
    let path = format!("/api/v1/compliance?{}", query.join("&"));
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
