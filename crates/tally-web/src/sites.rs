//! `/admin`: the site hierarchy below this server — each site with its link, last sync, lag,
//! backlog and counts — and, for the admin, inviting a child site (its one-time join secret
//! shown once, with the command the child runs) and revoking a child's link. Both go through
//! `tally_service::hierarchy`, the same operations as `tally sites invite` and `revoke`.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use maud::html;
use serde::Deserialize;
use tally_api::InviteSite;
use tally_core::SiteCode;
use tally_service::hierarchy;

use crate::admin::{admin_page, bad, button_form, checked_name, number, secret_page, when};
use crate::apps::{paged, PageQuery};
use crate::forms::csrf_input;
use crate::session::{CsrfOnly, Signed};
use crate::{WebError, WebState};

/// `/admin`: this site and every site below it, in tree order.
pub async fn page(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let all = hierarchy::tree(&state.service, Utc::now()).await?;
    let (sites, _, pages) = paged(&all, &q.page, |n| format!("/admin?page={n}"));
    let admin = signed.is_admin();
    let body = html! {
        @if admin {
            form.filters #invite-form method="post" action="/admin/sites/invite" {
                (csrf_input(&signed.csrf()))
                label for="code" { "Child site code" }
                input #code name="code" type="text" maxlength="3" minlength="3" required placeholder="P01";
                label for="name" { "Name" }
                input #name name="name" type="text" maxlength="255" required;
                label for="hours" { "Secret valid for (hours)" }
                input #hours name="hours" type="number" min="1" max="720" value=(hierarchy::INVITE_HOURS);
                button type="submit" { "Invite a child site" }
            }
        }
        table #sites {
            thead { tr { th { "Site" } th { "Name" } th { "Parent" } th { "Link" } th { "Last sync" } th { "Lag" }
                th.num { "Unsent records" } th.num { "Devices" } th.num { "Usage records" }
                @if admin { th { span.visually-hidden { "Actions" } } } } }
            tbody { @for s in sites {
                tr {
                    td { span.depth aria-hidden="true" { ("\u{a0}\u{a0}".repeat(s.depth as usize)) } (s.code) @if s.depth == 0 { " (this server)" } }
                    td { (s.name) } td { (s.parent.as_ref().map(|p| p.to_string()).unwrap_or_else(|| "—".into())) }
                    td { (s.link) } td { (when(s.last_sync_at)) }
                    td { (s.lag_secs.map(lag_text).unwrap_or_else(|| "—".into())) }
                    td.num { (s.backlog) } td.num { (s.devices) } td.num { (s.records) }
                    @if admin { td { @if s.depth == 1 && s.link != "revoked" {
                        (button_form(&signed, &format!("/admin/sites/{}/revoke", s.code), "Revoke", Some(&format!("Revoke site {}? It can no longer send data here.", s.code))))
                    } } }
                }
            } }
        }
        (pages)
    };
    Ok(admin_page(&signed, "/admin", "Administration: sites", body))
}

/// How far behind a site's data is, in the unit that fits: `40 s`, `12 min`, `5 h`, `3 days`.
fn lag_text(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3_600),
        s => format!("{} days", s / 86_400),
    }
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    hours: String,
}

fn site_code(text: &str) -> Result<SiteCode, WebError> {
    SiteCode::parse(text.trim()).map_err(|e| bad("code", &e.to_string()))
}

/// Invites a child site and shows its join secret once, with the command the child runs.
pub async fn invite(
    State(state): State<WebState>,
    signed: Signed,
    Form(form): Form<InviteForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let req = InviteSite {
        code: site_code(&form.code)?,
        name: checked_name(&form.name)?,
        expires_hours: number("hours", &form.hours, 1, 720)?.map(|h| h as u32),
    };
    let invited = hierarchy::invite(&state.service, signed.name(), &req).await?;
    let what = format!(
        "Invited site {} ({}); the secret works once, until {}. On the child run: tally server \
         --site-code {} --parent-url URL-OF-THIS-SERVER --parent-token SECRET (or put them in its \
         server.toml).",
        invited.code,
        invited.name,
        when(Some(invited.expires_at)),
        invited.code
    );
    Ok(secret_page(
        &signed,
        "/admin",
        "Site invited",
        &what,
        &invited.secret,
    ))
}

/// Revokes a child site's link: it can no longer join or send.
pub async fn revoke(
    State(state): State<WebState>,
    signed: Signed,
    Path(code): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    hierarchy::revoke(&state.service, signed.name(), &site_code(&code)?).await?;
    Ok(Redirect::to("/admin").into_response())
}
