//! Administration: operator tokens (a new one's secret shown once), enrolment tokens, agents
//! (last heartbeat, version, dropped records, revoke); the sites are in `sites`. Every change goes through
//! `tally_service::operators`, audited under the signed-in operator's name; the auditor sees
//! every list and no control, and the server refuses its changes whatever it sends.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use tally_api::{CreateEnrollmentToken, CreateToken};
use tally_core::Role;
use tally_service::operators;

use crate::apps::{paged, PageQuery};
use crate::forms::{bounded, csrf_input};
use crate::session::{CsrfOnly, Signed};
use crate::{layout, WebError, WebState};

/// The administration pages, for the sub-navigation: (path, title).
const PAGES: [(&str, &str); 7] = [
    ("/admin", "Sites"),
    ("/admin/tokens", "Operator tokens"),
    ("/admin/enrolment", "Enrolment tokens"),
    ("/admin/agents", "Agents"),
    ("/admin/tasks", "Maintenance tasks"),
    ("/admin/metering", "System metering"),
    ("/admin/audit", "Audit log"),
];

/// An administration page: the sub-navigation, then `body`.
pub fn admin_page(signed: &Signed, path: &str, title: &str, body: Markup) -> Response {
    let body = html! {
        nav.subnav aria-label="Administration" {
            @for (p, name) in PAGES { a href=(p) aria-current=[(p == path).then_some("page")] { (name) } " " }
        }
        @if !signed.is_admin() { p.muted.read-only { "Read-only: the auditor role sees the settings but cannot change them." } }
        (body)
    };
    layout::page(signed, "/admin", title, body).into_response()
}

/// `2026-11-30 14:05 UTC`, or `—`.
pub fn when(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".into())
}

/// A one-button form that POSTs to `action` (a revoke, a run).
pub fn button_form(signed: &Signed, action: &str, label: &str, confirm: Option<&str>) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf_input(&signed.csrf())) button type="submit" { (label) }
        }
    }
}

/// The last cell of a token's or an agent's row: for an admin, a button that revokes it unless
/// it is revoked already (an empty cell then); the auditor's table has no such column.
fn revoke_cell(
    signed: &Signed,
    revoked_at: Option<DateTime<Utc>>,
    action: &str,
    confirm: &str,
) -> Markup {
    html! {
        @if signed.is_admin() { td { @if revoked_at.is_none() {
            (button_form(signed, action, "Revoke", Some(confirm)))
        } } }
    }
}

pub(crate) fn bad(field: &str, why: &str) -> WebError {
    WebError::BadRequest(format!("{field}: {why}"))
}

pub(crate) fn checked_name(name: &str) -> Result<String, WebError> {
    bounded("name", name).map_err(|(f, why)| bad(&f, &why))?;
    match name.trim() {
        "" => Err(bad("name", "give the token a name")),
        n => Ok(n.to_string()),
    }
}

pub async fn tokens(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let all = state.service.store().operator_tokens().await?;
    let (tokens, _, pages) = paged(&all, &q.page, |n| format!("/admin/tokens?page={n}"));
    let body = html! {
        @if signed.is_admin() {
            form.filters #token-form method="post" action="/admin/tokens" {
                (csrf_input(&signed.csrf()))
                label for="name" { "Name" }
                input #name name="name" type="text" maxlength="255" required;
                label for="role" { "Role" }
                select #role name="role" { option value="auditor" { "auditor (read-only)" } option value="admin" { "admin" } }
                button type="submit" { "Create a token" }
            }
        }
        table #tokens {
            thead { tr { th { "Name" } th { "Role" } th { "Created" } th { "Revoked" }
                @if signed.is_admin() { th { span.visually-hidden { "Actions" } } } } }
            tbody { @for t in tokens {
                tr { td { (t.name) } td { (t.role.as_str()) } td { (when(Some(t.created_at))) } td { (when(t.revoked_at)) }
                    (revoke_cell(&signed, t.revoked_at, &format!("/admin/tokens/{}/revoke", t.id), &format!("Revoke {}? Its sessions end at once.", t.name))) }
            } }
        }
        (pages)
    };
    Ok(admin_page(
        &signed,
        "/admin/tokens",
        "Operator tokens",
        body,
    ))
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

/// The page that shows a new secret, the only time it is shown.
pub(crate) fn secret_page(
    signed: &Signed,
    path: &str,
    title: &str,
    what: &str,
    secret: &str,
) -> Response {
    let body = html! {
        p { (what) " Copy the secret now: Tally keeps only its hash and will not show it again." }
        p { code #secret { (secret) } }
        p { a href=(path) { "Back to the list" } }
    };
    let mut response = admin_page(signed, path, title, body);
    *response.status_mut() = StatusCode::CREATED;
    response
}

pub async fn create_token(
    State(state): State<WebState>,
    signed: Signed,
    Form(form): Form<TokenForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let name = checked_name(&form.name)?;
    let role = match form.role.as_str() {
        "admin" => Role::Admin,
        "auditor" => Role::Auditor,
        _ => return Err(bad("role", "admin or auditor")),
    };
    let (secret, hash) = operators::new_token();
    let req = CreateToken { name, role };
    let info = operators::create_token(&state.service, signed.name(), &req, &hash).await?;
    let what = format!("Created the {} token {}.", info.role.as_str(), info.name);
    Ok(secret_page(
        &signed,
        "/admin/tokens",
        "Token created",
        &what,
        &secret,
    ))
}

/// The id in a path, or not found.
fn id_of(text: &str) -> Result<i64, WebError> {
    text.parse().map_err(|_| {
        WebError::NotFound(format!(
            "no entry {:?}",
            text.chars().take(40).collect::<String>()
        ))
    })
}

pub async fn revoke_token(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    operators::revoke_token(&state.service, signed.name(), id_of(&id)?).await?;
    Ok(Redirect::to("/admin/tokens").into_response())
}

pub async fn enrolment(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let all = state.service.store().enrollment_tokens().await?;
    let (tokens, _, pages) = paged(&all, &q.page, |n| format!("/admin/enrolment?page={n}"));
    let body = html! {
        @if signed.is_admin() {
            form.filters #enrolment-form method="post" action="/admin/enrolment" {
                (csrf_input(&signed.csrf()))
                label for="name" { "Name" }
                input #name name="name" type="text" maxlength="255" required;
                label for="days" { "Valid for (days)" }
                input #days name="days" type="number" min="1" max="365" value="7";
                label for="max_uses" { "At most (enrolments)" }
                input #max_uses name="max_uses" type="number" min="1" max="1000000" placeholder="unlimited";
                button type="submit" { "Create an enrolment token" }
            }
        }
        table #enrolment-tokens {
            thead { tr { th { "Name" } th { "Site" } th { "Created" } th { "Expires" } th.num { "Used" } th.num { "At most" } th { "Revoked" }
                @if signed.is_admin() { th { span.visually-hidden { "Actions" } } } } }
            tbody { @for t in tokens {
                tr { td { (t.name) } td { (t.site_code) } td { (when(Some(t.created_at))) } td { (when(t.expires_at)) }
                    td.num { (t.uses) } td.num { (t.max_uses.map(|m| m.to_string()).unwrap_or_else(|| "unlimited".into())) } td { (when(t.revoked_at)) }
                    (revoke_cell(&signed, t.revoked_at, &format!("/admin/enrolment/{}/revoke", t.id), &format!("Revoke {}?", t.name))) }
            } }
        }
        (pages)
    };
    Ok(admin_page(
        &signed,
        "/admin/enrolment",
        "Enrolment tokens",
        body,
    ))
}

#[derive(Deserialize)]
pub struct EnrolmentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    max_uses: String,
}

/// A whole number from `min` to `max`, or `None` when empty.
pub fn number(field: &str, text: &str, min: i64, max: i64) -> Result<Option<i64>, WebError> {
    match text.trim() {
        "" => Ok(None),
        t => t
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .map(Some)
            .ok_or_else(|| bad(field, &format!("a whole number from {min} to {max}"))),
    }
}

pub async fn create_enrolment(
    State(state): State<WebState>,
    signed: Signed,
    Form(form): Form<EnrolmentForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let name = checked_name(&form.name)?;
    let days = number("days", &form.days, 1, 365)?.unwrap_or(7);
    let max_uses = number("max_uses", &form.max_uses, 1, 1_000_000)?.map(|n| n as i32);
    let req = CreateEnrollmentToken {
        name,
        site_code: None,
        expires_at: Some(Utc::now() + chrono::Duration::days(days)),
        max_uses,
    };
    let (secret, hash) = operators::new_token();
    let info =
        operators::create_enrollment_token(&state.service, signed.name(), req, &hash).await?;
    let what = format!(
        "Created the enrolment token {} for site {}, valid until {}.",
        info.name,
        info.site_code,
        when(info.expires_at)
    );
    Ok(secret_page(
        &signed,
        "/admin/enrolment",
        "Enrolment token created",
        &what,
        &secret,
    ))
}

pub async fn revoke_enrolment(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    operators::revoke_enrollment_token(&state.service, signed.name(), id_of(&id)?).await?;
    Ok(Redirect::to("/admin/enrolment").into_response())
}

pub async fn agents(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let store = state.service.store();
    let all = store.agents().await?;
    let (agents, _, pages) = paged(&all, &q.page, |n| format!("/admin/agents?page={n}"));
    // Only the page's agents have their computer's name read.
    let mut rows = Vec::new();
    for a in agents {
        let host = store
            .device(a.device_id)
            .await?
            .map(|d| d.host_name)
            .unwrap_or_default();
        rows.push((a, host));
    }
    let body = html! {
        table #agents {
            thead { tr { th { "Computer" } th { "Agent" } th { "Version" } th { "Enrolled" } th { "Last heartbeat" } th.num { "Dropped records" } th { "Revoked" }
                @if signed.is_admin() { th { span.visually-hidden { "Actions" } } } } }
            tbody {
                @for (a, host) in &rows {
                    tr { td { a href={"/devices/" (a.device_id)} { (host) } } td { code { (a.id) } }
                        td { (a.agent_version.clone().unwrap_or_else(|| "—".into())) } td { (when(Some(a.enrolled_at))) }
                        td { (when(a.last_heartbeat)) } td.num.bad[a.dropped_records > 0] { (a.dropped_records) } td { (when(a.revoked_at)) }
                        (revoke_cell(&signed, a.revoked_at, &format!("/admin/agents/{}/revoke", layout::encode(&a.id)), &format!("Revoke the agent on {host}?"))) }
                }
                @if rows.is_empty() { tr { td colspan="8" { "No agent has enrolled yet." } } }
            }
        }
        (pages)
    };
    Ok(admin_page(&signed, "/admin/agents", "Agents", body))
}

pub async fn revoke_agent(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    if id.chars().count() > 100 {
        return Err(WebError::NotFound("no such agent".into()));
    }
    operators::revoke_agent(&state.service, signed.name(), &id).await?;
    Ok(Redirect::to("/admin/agents").into_response())
}
