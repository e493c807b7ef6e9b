//! Devices: the list (status and host name filters, paged on the server by id so a large
//! estate is never read whole for a page), the status editable by an admin, and a device's
//! page: hardware, installed software, the licensed applications last used on it, and who ran
//! which metered program there by month.

use std::collections::HashMap;
use std::future::Future;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{Datelike, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use tally_api::MonthlyRow;
use tally_core::{Device, DeviceStatus};
use tally_store::{Page, StoreError, UsageOf};

use crate::admin::when;
use crate::apps::{query, PER_PAGE};
use crate::forms::{csrf_input, MAX_FIELD_CHARS};
use crate::placement;
use crate::session::Signed;
use crate::{layout, WebError, WebState};

/// Rows read per query while looking for a page of matches.
const SCAN: i64 = 1_000;
/// Rows read at most for one page of matches; a filter matching fewer says so.
const SCAN_MAX: usize = 1_000_000;

/// A page of the rows `keep` accepts, from id `after` on, read `SCAN` at a time; and the id to
/// continue from when there are more.
pub async fn filtered_page<T, F, Fut>(
    fetch: F,
    id: fn(&T) -> i64,
    keep: impl Fn(&T) -> bool,
    after: i64,
) -> Result<(Vec<T>, Option<i64>), WebError>
where
    F: Fn(Page) -> Fut,
    Fut: Future<Output = Result<Vec<T>, StoreError>>,
{
    let (mut found, mut after, mut read) = (Vec::new(), after, 0);
    while read < SCAN_MAX {
        let rows = fetch(Page { after, limit: SCAN }).await?;
        let full = rows.len() as i64 == SCAN;
        read += rows.len();
        for row in rows {
            after = id(&row);
            if keep(&row) {
                found.push(row);
                if found.len() == PER_PAGE {
                    return Ok((found, Some(after)));
                }
            }
        }
        if !full {
            break;
        }
    }
    Ok((found, None))
}

/// The cursor a list page starts after, from the query.
pub fn cursor(after: &str) -> Result<i64, WebError> {
    match after.trim() {
        "" => Ok(0),
        t => t
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| WebError::BadRequest("after: a row id".into())),
    }
}

/// A list's URL with its `filters`, starting after row `after`.
pub fn list_href(path: &str, filters: &[(&str, &str)], after: Option<i64>) -> String {
    let after = after.map(|a| a.to_string()).unwrap_or_default();
    let mut pairs = filters.to_vec();
    pairs.push(("after", &after));
    format!("{path}{}", query(&pairs))
}

/// The links under a list: back to its first page, and on to the next when there is one.
pub fn more(first: String, next: Option<String>) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            a href=(first) { "First page" }
            @if let Some(n) = next { " · " a rel="next" href=(n) { "Next page →" } }
        }
    }
}

pub fn search_bound(q: &str) -> Result<String, WebError> {
    match q.chars().count() > MAX_FIELD_CHARS {
        true => Err(WebError::BadRequest(format!(
            "q: at most {MAX_FIELD_CHARS} characters"
        ))),
        false => Ok(q.trim().to_lowercase()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    q: String,
    status: String,
    after: String,
}

/// Org node names by id.
pub async fn node_names(state: &WebState) -> Result<HashMap<i64, String>, WebError> {
    let nodes = tally_service::org::nodes(state.service.store()).await?;
    Ok(nodes
        .into_iter()
        .map(|n| (n.node.id, n.node.name))
        .collect())
}

fn status_select(id: &str, current: Option<DeviceStatus>, any: bool) -> Markup {
    html! {
        select id=(id) name="status" {
            @if any { option value="" { "any" } }
            @for s in DeviceStatus::ALL { option value=(s.as_str()) selected[current == Some(s)] { (layout::words(s.as_str())) } }
        }
    }
}

pub async fn list(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let needle = search_bound(&q.q)?;
    let status = match q.status.as_str() {
        "" => None,
        s => Some(DeviceStatus::parse(s).ok_or_else(|| {
            WebError::BadRequest("status: in_stock, active, in_repair or retired".into())
        })?),
    };
    let store = state.service.store();
    let keep = |d: &Device| {
        status.is_none_or(|s| d.status == s)
            && (needle.is_empty() || d.host_name.to_lowercase().contains(&needle))
    };
    let (devices, next) =
        filtered_page(|p| store.devices(p), |d| d.id, keep, cursor(&q.after)?).await?;
    let nodes = node_names(&state).await?;
    let filters = [("q", q.q.as_str()), ("status", q.status.as_str())];
    let href = |after: Option<i64>| list_href("/devices", &filters, after);
    let body = html! {
        form.filters method="get" action="/devices" role="search" {
            label for="q" { "Host name" } input #q type="search" name="q" value=(q.q) maxlength="255";
            label for="status" { "Status" } (status_select("status", status, true))
            button type="submit" { "Show" }
        }
        table #devices {
            thead { tr { th { "Host name" } th { "Status" } th { "Org node" } th { "OS" } th { "Last seen" } } }
            tbody {
                @for d in &devices {
                    tr { td { a href={"/devices/" (d.id)} { (d.host_name) } } td { (status_cell(&signed, d)) }
                        td { (d.org_node.and_then(|n| nodes.get(&n)).cloned().unwrap_or_default()) }
                        td { (d.os.clone().unwrap_or_default()) } td { (when(d.last_seen)) } }
                }
                @if devices.is_empty() { tr { td colspan="5" { "No device matches." } } }
            }
        }
        (more(href(None), next.map(|n| href(Some(n)))))
    };
    Ok(layout::page(&signed, "/devices", "Devices", body).into_response())
}

/// A device's status: for an admin, a form that changes it.
fn status_cell(signed: &Signed, d: &Device) -> Markup {
    if !signed.is_admin() {
        return html! { (layout::words(d.status.as_str())) };
    }
    let id = format!("status-{}", d.id);
    html! {
        form.inline method="post" action={"/devices/" (d.id) "/status"} {
            (csrf_input(&signed.csrf()))
            label.visually-hidden for=(id) { "Status of " (d.host_name) }
            (status_select(&id, Some(d.status), false))
            button type="submit" { "Save" }
        }
    }
}

#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
}

fn device_id(id: &str) -> Result<i64, WebError> {
    id.parse()
        .map_err(|_| WebError::NotFound("no such device; see the device list".into()))
}

pub async fn set_status(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let status = DeviceStatus::parse(&form.status).ok_or_else(|| {
        WebError::BadRequest("status: in_stock, active, in_repair or retired".into())
    })?;
    let device =
        tally_service::devices::set_status(&state.service, signed.name(), device_id(&id)?, status)
            .await?;
    Ok(Redirect::to(&format!("/devices/{}", device.id)).into_response())
}

/// Every period each package was installed, the removed ones marked.
fn software(history: &[tally_core::inventory::SoftwarePeriod]) -> Markup {
    let since = |at: Option<chrono::DateTime<Utc>>| {
        at.map(|t| t.date_naive().to_string())
            .unwrap_or_else(|| "before Tally knew".into())
    };
    html! {
        table #software {
            thead { tr { th { "Name" } th { "Version" } th { "Publisher" } th { "Installed" } th { "Removed" } } }
            tbody {
                @for s in history {
                    tr.muted[s.removed_at.is_some()] { td { (s.name) } td { (s.version) } td { (s.publisher) }
                        td { (since(s.installed_at)) } td { (s.removed_at.map(|t| t.date_naive().to_string()).unwrap_or_else(|| "still installed".into())) } }
                }
                @if history.is_empty() { tr { td colspan="5" { "No software known on this device." } } }
            }
        }
    }
}

/// `16 GiB`.
fn memory(bytes: Option<i64>) -> String {
    bytes
        .map(|b| format!("{:.0} GiB", b as f64 / (1u64 << 30) as f64))
        .unwrap_or_else(|| "—".into())
}

fn hardware(d: &Device, node: Option<&String>) -> Markup {
    let opt = |v: Option<i32>| v.map(|n| n.to_string()).unwrap_or_else(|| "—".into());
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    html! {
        dl.figures #hardware {
            dt { "Status" } dd { (layout::words(d.status.as_str())) }
            dt { "Org node" } dd { (node.cloned().unwrap_or_else(|| "—".into())) }
            dt { "Site" } dd { (d.site_code) }
            dt { "OS" } dd { (text(&d.os)) }
            dt { "Processor" } dd { (text(&d.cpu_model)) }
            dt { "Sockets / cores / threads" } dd { (opt(d.sockets)) " / " (opt(d.cores)) " / " (opt(d.threads)) }
            dt { "Memory" } dd { (memory(d.memory_bytes)) }
            dt { "Virtual" } dd { @if d.is_virtual { "yes" } @else { "no" } }
            dt { "Serial" } dd { (text(&d.serial)) }
            dt { "Last seen" } dd { (when(d.last_seen)) }
        }
    }
}

/// The monthly rows of the last 12 months of one device or user, named, newest first.
pub async fn recent_use(state: &WebState, of: UsageOf) -> Result<Vec<MonthlyRow>, WebError> {
    let today = Utc::now().date_naive();
    let to = today.year() * 100 + today.month() as i32;
    let from = (today.year() - 1) * 100 + today.month() as i32;
    let store = state.service.store();
    Ok(tally_service::summary_views::monthly_of(store, of, (from, to)).await?)
}

/// `2026-11`.
pub fn month(m: i32) -> String {
    format!("{}-{:02}", m / 100, m % 100)
}

/// A length of time in units that fit: `45 min`, `3.5 h`.
pub fn hours(ms: i64) -> String {
    match ms {
        ms if ms < 3_600_000 => format!("{} min", ms / 60_000),
        ms => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

/// Monthly program use, with `who` naming the other side (the user on a device's page, the
/// device on a user's).
pub fn use_table(rows: &[MonthlyRow], who: &str, name: impl Fn(&MonthlyRow) -> Markup) -> Markup {
    html! {
        table #program-use {
            thead { tr { th { "Month" } th { "Program" } th { (who) } th.num { "Runs" } th.num { "Time" } th { "Last used" } } }
            tbody {
                @for r in rows { tr { td { (month(r.month)) } td { (r.rule) } td { (name(r)) } td.num { (r.runs) } td.num { (hours(r.usage_ms)) } td { (when(Some(r.last_used))) } } }
                @if rows.is_empty() { tr { td colspan="6" { "No metered program use in the last 12 months." } } }
            }
        }
    }
}

pub async fn detail(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = device_id(&id)?;
    let store = state.service.store();
    let device = store
        .device(id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("no device {id}; see the device list")))?;
    let history = store.software_history(id).await?;
    let nodes = node_names(&state).await?;
    let today = Utc::now().date_naive();
    let last = state.service.last_use_on(today, id).await?;
    let used = recent_use(&state, UsageOf::Device(id)).await?;
    let body = html! {
        p { a href="/devices" { "← All devices" } }
        @if signed.is_admin() {
            p { "Change the status: " (status_cell(&signed, &device)) }
            @let current = device.org_node.and_then(|n| nodes.get(&n)).map(String::as_str);
            p { (placement::form(&signed, &format!("/devices/{id}/org-node"), current, nodes.values())) }
        }
        h2 { "Hardware" } (hardware(&device, device.org_node.and_then(|n| nodes.get(&n))))
        h2 { "Installed software, with its history" }
        (software(&history))
        h2 { "Licensed applications last used here" }
        table #last-used {
            thead { tr { th { "Application" } th { "Last used" } } }
            tbody {
                @for (a, at) in &last { tr { td { a href=(layout::app_href(a, None)) { (a) } } td { (when(Some(*at))) } } }
                @if last.is_empty() { tr { td colspan="2" { "No recorded use." } } }
            }
        }
        h2 { "Who ran what (metered programs, last 12 months)" }
        (use_table(&used, "User", |r| html! { a href={"/users/" (r.user_id)} { (r.account) } }))
    };
    Ok(layout::page(&signed, "/devices", &device.host_name, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_months_read_in_fitting_units() {
        assert_eq!(hours(45 * 60_000), "45 min");
        assert_eq!(hours(3 * 3_600_000 + 30 * 60_000), "3.5 h");
        assert_eq!(month(202603), "2026-03");
        assert_eq!(
            list_href("/devices", &[("q", "pc 1"), ("status", "")], Some(7)),
            "/devices?q=pc%201&after=7"
        );
        assert_eq!(list_href("/users", &[("kind", "")], None), "/users");
    }
}
