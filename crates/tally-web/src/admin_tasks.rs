//! Administration, continued: the maintenance tasks (state, run now, schedule) through
//! `tally_service::maintenance`, and the audit log filtered by actor, action and day, paged.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::NaiveDate;
use maud::html;
use serde::Deserialize;
use tally_api::TaskChange;
use tally_core::tasks::Task;
use tally_core::AuditEntry;
use tally_service::maintenance;
use tally_store::Page;

use crate::admin::{admin_page, button_form, number, when};
use crate::apps::{page_number, pager, query, PER_PAGE};
use crate::forms::{csrf_input, MAX_FIELD_CHARS};
use crate::session::{CsrfOnly, Signed};
use crate::{WebError, WebState};

/// `3 h`, `1 d`, `45 min`.
fn every(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3_600 == 0 => format!("{} h", s / 3_600),
        s => format!("{} min", s / 60),
    }
}

/// `1.4 s`, `230 ms`.
fn took(ms: Option<i64>) -> String {
    match ms {
        None => "—".into(),
        Some(ms) if ms >= 1_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{ms} ms"),
    }
}

pub async fn tasks(State(state): State<WebState>, signed: Signed) -> Result<Response, WebError> {
    let tasks = state.service.store().tasks().await?;
    let body = html! {
        table #tasks {
            thead { tr { th { "Task" } th { "On" } th { "Every" } th.num { "Keeps (days)" } th { "Last run" } th { "Took" } th.num { "Rows" } th { "Last error" }
                @if signed.is_admin() { th { "Run" } th { "Schedule" } } } }
            tbody { @for t in &tasks {
                tr id={"task-" (t.name)} {
                    td { (t.name) } td { @if t.enabled { "on" } @else { "off" } } td { (every(t.every_secs)) }
                    td.num { (t.age_days.map(|d| d.to_string()).unwrap_or_else(|| "—".into())) }
                    td { (when(t.last_run_at)) } td { (took(t.last_duration_ms)) }
                    td.num { (t.last_rows.map(|r| r.to_string()).unwrap_or_else(|| "—".into())) }
                    td.bad[t.last_error.is_some()] { (t.last_error.clone().unwrap_or_default()) }
                    @if signed.is_admin() {
                        td { (button_form(&signed, &format!("/admin/tasks/{}/run", t.name), "Run now", None)) }
                        td { form.inline method="post" action={"/admin/tasks/" (t.name)} {
                            (csrf_input(&signed.csrf()))
                            label.visually-hidden for={"every-" (t.name)} { "Every (minutes)" }
                            input id={"every-" (t.name)} name="every_minutes" type="number" min="1" max="525600" value=(t.every_secs / 60) title="every … minutes";
                            " min "
                            label.visually-hidden for={"enabled-" (t.name)} { "On" }
                            select id={"enabled-" (t.name)} name="enabled" { option value="true" selected[t.enabled] { "on" } option value="false" selected[!t.enabled] { "off" } }
                            @if let Some(age) = t.age_days {
                                label.visually-hidden for={"age-" (t.name)} { "Keeps (days)" }
                                input id={"age-" (t.name)} name="age_days" type="number" min="1" max="3650" value=(age) title="keeps … days";
                                " days "
                            }
                            button type="submit" { "Save" }
                        } }
                    }
                }
            } }
        }
    };
    Ok(admin_page(
        &signed,
        "/admin/tasks",
        "Maintenance tasks",
        body,
    ))
}

fn task_named(name: &str) -> Result<Task, WebError> {
    Task::parse(name).ok_or_else(|| WebError::NotFound("no such task; see the task list".into()))
}

pub async fn run(
    State(state): State<WebState>,
    signed: Signed,
    Path(name): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let task = task_named(&name)?;
    maintenance::run_as(&state.service, task, signed.name()).await?;
    Ok(Redirect::to(&format!("/admin/tasks#task-{}", task.name())).into_response())
}

#[derive(Deserialize)]
pub struct ScheduleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    every_minutes: String,
    #[serde(default)]
    enabled: String,
    #[serde(default)]
    age_days: String,
}

pub async fn schedule(
    State(state): State<WebState>,
    signed: Signed,
    Path(name): Path<String>,
    Form(form): Form<ScheduleForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let task = task_named(&name)?;
    let enabled = match form.enabled.as_str() {
        "" => None,
        "true" => Some(true),
        "false" => Some(false),
        _ => return Err(WebError::BadRequest("enabled: true or false".into())),
    };
    let change = TaskChange {
        enabled,
        every_secs: number("every_minutes", &form.every_minutes, 1, 525_600)?.map(|m| m * 60),
        age_days: number("age_days", &form.age_days, 1, 3650)?.map(|d| d as i32),
    };
    maintenance::change(&state.service, task, &change, signed.name()).await?;
    Ok(Redirect::to(&format!("/admin/tasks#task-{}", task.name())).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AuditQuery {
    actor: String,
    action: String,
    from: String,
    to: String,
    page: String,
}

/// Entries read from the store at most, newest kept: the filter runs over these.
const AUDIT_SCAN: i64 = 200_000;
const AUDIT_READ: i64 = 1_000;

fn day(field: &str, text: &str) -> Result<Option<NaiveDate>, WebError> {
    match text.trim() {
        "" => Ok(None),
        t => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| WebError::BadRequest(format!("{field}: a day as YYYY-MM-DD"))),
    }
}

impl AuditQuery {
    fn keeps(&self, e: &AuditEntry, from: Option<NaiveDate>, to: Option<NaiveDate>) -> bool {
        let has = |text: &str, needle: &str| {
            needle.is_empty() || text.to_lowercase().contains(&needle.to_lowercase())
        };
        let on = e.at.date_naive();
        has(&e.actor, self.actor.trim())
            && has(&e.action, self.action.trim())
            && from.is_none_or(|d| on >= d)
            && to.is_none_or(|d| on <= d)
    }
}

/// The audit log, newest first, filtered by actor and action (any part, any case) and by day.
pub async fn audit(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<AuditQuery>,
) -> Result<Response, WebError> {
    if q.actor.chars().count() > MAX_FIELD_CHARS || q.action.chars().count() > MAX_FIELD_CHARS {
        return Err(WebError::BadRequest(format!(
            "actor, action: at most {MAX_FIELD_CHARS} characters"
        )));
    }
    let (from, to) = (day("from", &q.from)?, day("to", &q.to)?);
    let store = state.service.store();
    let mut found: Vec<(i64, AuditEntry)> = Vec::new();
    let mut after = 0;
    for _ in 0..AUDIT_SCAN / AUDIT_READ {
        let rows = store
            .audit_log(Page {
                after,
                limit: AUDIT_READ,
            })
            .await?;
        let Some((last, _)) = rows.last() else { break };
        after = *last;
        found.extend(rows.into_iter().filter(|(_, e)| q.keeps(e, from, to)));
    }
    found.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
    let page = page_number(&q.page);
    let shown = found.iter().skip((page - 1) * PER_PAGE).take(PER_PAGE);
    let body = html! {
        form.filters #audit-filter method="get" action="/admin/audit" role="search" {
            label for="actor" { "Actor" } input #actor name="actor" type="search" maxlength="255" value=(q.actor);
            label for="action" { "Action" } input #action name="action" type="search" maxlength="255" value=(q.action) placeholder="e.g. token.create";
            label for="from" { "From" } input #from name="from" type="date" value=(q.from);
            label for="to" { "To" } input #to name="to" type="date" value=(q.to);
            button type="submit" { "Filter" }
        }
        table #audit {
            thead { tr { th { "When" } th { "Actor" } th { "Action" } th { "Target" } th { "Detail" } } }
            tbody {
                @for (_, e) in shown { tr { td { (when(Some(e.at))) } td { (e.actor) } td { (e.action) } td { (e.target) } td.detail { (e.detail) } } }
                @if found.is_empty() { tr { td colspan="5" { "No entry matches." } } }
            }
        }
        (pager(page, found.len(), |n| format!("/admin/audit{}", query(&[("actor", &q.actor), ("action", &q.action), ("from", &q.from), ("to", &q.to), ("page", &n.to_string())]))))
    };
    Ok(admin_page(&signed, "/admin/audit", "Audit log", body))
}
