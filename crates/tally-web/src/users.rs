//! Users: the list (account or name search, service accounts alone or people alone, paged on
//! the server by id), the service-account flag an admin sets (yes, no, or back to what
//! inventory and import say), and a user's page with what they ran where.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use tally_api::ServiceAccountChoice;
use tally_core::User;
use tally_store::{Page, UsageOf};

use crate::devices::{
    cursor, filtered_page, list_href, more, node_names, recent_use, search_bound, use_table,
};
use crate::forms::csrf_input;
use crate::placement;
use crate::session::Signed;
use crate::{layout, WebError, WebState};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    q: String,
    kind: String,
    after: String,
}

fn kind_text(u: &User) -> &'static str {
    match (u.service_account, u.service_account_set_by_admin.is_some()) {
        (true, true) => "service account (set by an admin)",
        (true, false) => "service account",
        (false, true) => "person (set by an admin)",
        (false, false) => "person",
    }
}

pub async fn list(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let needle = search_bound(&q.q)?;
    let service = match q.kind.as_str() {
        "" => None,
        "service" => Some(true),
        "person" => Some(false),
        _ => return Err(WebError::BadRequest("kind: service or person".into())),
    };
    let store = state.service.store();
    let keep = |u: &User| {
        service.is_none_or(|s| u.service_account == s)
            && (needle.is_empty()
                || u.account.to_lowercase().contains(&needle)
                || u.full_name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(&needle)))
    };
    let (users, next) =
        filtered_page(|p| store.users(p), |u| u.id, keep, cursor(&q.after)?).await?;
    let filters = [("q", q.q.as_str()), ("kind", q.kind.as_str())];
    let href = |after: Option<i64>| list_href("/users", &filters, after);
    let body = html! {
        form.filters method="get" action="/users" role="search" {
            label for="q" { "Account or name" } input #q type="search" name="q" value=(q.q) maxlength="255";
            label for="kind" { "Kind" }
            select #kind name="kind" {
                option value="" { "any" }
                option value="person" selected[q.kind == "person"] { "people" }
                option value="service" selected[q.kind == "service"] { "service accounts" }
            }
            button type="submit" { "Show" }
        }
        table #users {
            thead { tr { th { "Account" } th { "Full name" } th { "Kind" } th { "Why" } @if signed.is_admin() { th { "Set" } } } }
            tbody {
                @for u in &users {
                    tr { td { a href={"/users/" (u.id)} { (u.account) } } td { (u.full_name.clone().unwrap_or_default()) }
                        td { (kind_text(u)) } td { (u.service_account_reason.clone().unwrap_or_default()) }
                        @if signed.is_admin() { td { (choice_form(&signed, u)) } } }
                }
                @if users.is_empty() { tr { td colspan="5" { "No user matches." } } }
            }
        }
        (more(href(None), next.map(|n| href(Some(n)))))
    };
    Ok(layout::page(&signed, "/users", "Users", body).into_response())
}

fn choice_form(signed: &Signed, u: &User) -> Markup {
    let id = format!("service-{}", u.id);
    let current = match u.service_account_set_by_admin {
        None => "auto",
        Some(true) => "yes",
        Some(false) => "no",
    };
    let options = [
        ("auto", "as inventory and import say"),
        ("yes", "service account"),
        ("no", "person"),
    ];
    html! {
        form.inline method="post" action={"/users/" (u.id) "/service-account"} {
            (csrf_input(&signed.csrf()))
            label.visually-hidden for=(id) { "Service account: " (u.account) }
            select id=(id) name="service_account" {
                @for (v, text) in options { option value=(v) selected[v == current] { (text) } }
            }
            button type="submit" { "Save" }
        }
    }
}

/// The user with id `id`.
async fn user(state: &WebState, id: &str) -> Result<User, WebError> {
    let missing = || WebError::NotFound("no such user; see the user list".into());
    let id: i64 = id.parse().map_err(|_| missing())?;
    let page = Page {
        after: id.saturating_sub(1),
        limit: 1,
    };
    let found = state.service.store().users(page).await?;
    found.into_iter().find(|u| u.id == id).ok_or_else(missing)
}

#[derive(Deserialize)]
pub struct ChoiceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    service_account: String,
}

pub async fn set_service_account(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<ChoiceForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let choice = match form.service_account.as_str() {
        "yes" => ServiceAccountChoice::Yes,
        "no" => ServiceAccountChoice::No,
        "auto" => ServiceAccountChoice::Auto,
        _ => {
            return Err(WebError::BadRequest(
                "service_account: yes, no or auto".into(),
            ))
        }
    };
    let u = user(&state, &id).await?;
    tally_service::users::set_service_account(&state.service, signed.name(), &u.account, choice)
        .await?;
    Ok(Redirect::to(&format!("/users/{}", u.id)).into_response())
}

pub async fn detail(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let u = user(&state, &id).await?;
    let nodes = node_names(&state).await?;
    let used = recent_use(&state, UsageOf::User(u.id)).await?;
    let body = html! {
        p { a href="/users" { "← All users" } }
        dl.figures #user {
            dt { "Account" } dd { (u.account) }
            dt { "Full name" } dd { (u.full_name.clone().unwrap_or_else(|| "—".into())) }
            dt { "Kind" } dd { (kind_text(&u)) }
            dt { "Why" } dd { (u.service_account_reason.clone().unwrap_or_else(|| "—".into())) }
            dt { "Org node" } dd { (u.org_node.and_then(|n| nodes.get(&n)).cloned().unwrap_or_else(|| "—".into())) }
        }
        @if signed.is_admin() {
            p { "Service account: " (choice_form(&signed, &u)) }
            @let current = u.org_node.and_then(|n| nodes.get(&n)).map(String::as_str);
            p { (placement::form(&signed, &format!("/users/{}/org-node", u.id), current, nodes.values())) }
        }
        h2 { "What they ran (metered programs, last 12 months)" }
        (use_table(&used, "Computer", |r| html! { a href={"/devices/" (r.device_id)} { (r.host_name) } }))
    };
    Ok(layout::page(&signed, "/users", &u.account, body).into_response())
}
