//! Licenses: the list (searchable, paged, filtered to those ending soon), adding and editing
//! through the form, removing. Every change goes through `tally_service::licensing`, which runs
//! the import's checks (seed 002's tables among them) and writes the audit entry with the
//! signed-in operator's name; its refusals come back as the form's own errors.

use std::collections::HashSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;
use tally_api::{LicenseSaved, LicenseView};
use tally_service::licensing;

use crate::apps::{page_number, pager, query, PER_PAGE};
use crate::forms::{csrf_input, Problems};
use crate::layout::{self, app_href, monies, words};
use crate::license_form::{Choices, LicenseForm, FIELDS};
use crate::session::{CsrfOnly, Signed};
use crate::{WebError, WebState};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    q: String,
    expiring: String,
    page: String,
}

/// The longest look ahead the list's `expiring` filter takes, as the API's.
const MAX_EXPIRING: i64 = licensing::MAX_EXPIRING_DAYS;

pub async fn list(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, WebError> {
    let store = state.service.store();
    let needle = q.q.trim().to_lowercase();
    if needle.chars().count() > crate::forms::MAX_FIELD_CHARS {
        return Err(WebError::BadRequest("q: at most 255 characters".into()));
    }
    let ending = match q.expiring.trim() {
        "" => None,
        days => {
            let days = days
                .parse::<i64>()
                .ok()
                .filter(|d| (0..=MAX_EXPIRING).contains(d));
            let days = days.ok_or_else(|| {
                WebError::BadRequest(format!(
                    "expiring: a number of days from 0 to {MAX_EXPIRING}"
                ))
            })?;
            let today = Utc::now().date_naive();
            let ids: HashSet<i64> = licensing::expiring(store, today, days)
                .await?
                .iter()
                .map(|e| e.license_id)
                .collect();
            Some(ids)
        }
    };
    let mut all = licensing::licenses(store).await?;
    all.retain(|l| {
        ending
            .as_ref()
            .is_none_or(|ids| ids.contains(&l.license.id))
    });
    all.retain(|l| needle.is_empty() || l.label.to_lowercase().contains(&needle));
    let page = page_number(&q.page);
    let shown: Vec<&LicenseView> = all
        .iter()
        .skip((page - 1) * PER_PAGE)
        .take(PER_PAGE)
        .collect();
    let body = html! {
        form.filters method="get" action="/licenses" role="search" {
            label for="q" { "Search" }
            input #q type="search" name="q" value=(q.q) maxlength="255" placeholder="application or #number";
            label for="expiring" { "Ending within (days)" }
            input #expiring type="number" name="expiring" min="0" max=(MAX_EXPIRING) value=(q.expiring);
            button type="submit" { "Show" }
            @if signed.is_admin() { a.button #add-license href="/licenses/new" { "Add a license" } }
        }
        (table(&signed, &shown))
        (pager(page, all.len(), |n| format!("/licenses{}", query(&[("q", &q.q), ("expiring", &q.expiring), ("page", &n.to_string())]))))
    };
    Ok(layout::page(&signed, "/licenses", "Licenses", body))
}

fn table(signed: &Signed, shown: &[&LicenseView]) -> Markup {
    html! {
        table #license-list {
            thead { tr {
                th { "License" } th { "Application" } th { "Metric" } th.num { "Quantity" }
                th { "Assigned to" } th { "Valid until" } th { "Maintenance until" } th.num { "Unit cost" }
                @if signed.is_admin() { th { span.visually-hidden { "Actions" } } }
            } }
            tbody {
                @for l in shown {
                    @let lic = &l.license;
                    tr {
                        td { a href={"/licenses/" (lic.id)} { (l.label) } }
                        td { a href=(app_href(&l.application, None)) { (l.application) } }
                        td { (words(lic.metric.as_str())) } td.num { (lic.quantity) }
                        td { (lic.assignment_type.as_str()) @if let Some(n) = &l.assigned_to_name { " " (n) } }
                        td { (lic.valid_until.map(|d| d.to_string()).unwrap_or_default()) }
                        td { (lic.maintenance_until.map(|d| d.to_string()).unwrap_or_default()) }
                        td.num { (unit_cost(l)) }
                        @if signed.is_admin() { td { (remove_button(signed, lic.id)) } }
                    }
                }
                @if shown.is_empty() { tr { td colspan="9" { "No license matches." } } }
            }
        }
    }
}

fn unit_cost(l: &LicenseView) -> String {
    let money = l
        .license
        .unit_cost_minor
        .map(|minor| tally_core::compliance::Money {
            minor,
            currency: l.license.currency.clone().unwrap_or_default(),
        });
    monies(money.as_ref())
}

fn remove_button(signed: &Signed, id: i64) -> Markup {
    html! {
        form.inline method="post" action={"/licenses/" (id) "/remove"} data-confirm={"Remove license #" (id) "?"} {
            (csrf_input(&signed.csrf()))
            button.danger type="submit" { "Remove" }
        }
    }
}

/// The form page, with `status` (422 when it shows problems).
fn form_page(signed: &Signed, title: &str, form: Markup, status: StatusCode) -> Response {
    let body = html! { p { a href="/licenses" { "← All licenses" } } (form) };
    (status, layout::page(signed, "/licenses", title, body)).into_response()
}

pub async fn new_form(State(state): State<WebState>, signed: Signed) -> Result<Response, WebError> {
    if !signed.is_admin() {
        return Err(WebError::Forbidden(
            "the auditor role cannot add licenses".into(),
        ));
    }
    let choices = Choices::read(&state.service).await?;
    let form = crate::license_form::render(
        "/licenses",
        &signed.csrf(),
        &LicenseForm::default(),
        &Problems::default(),
        &choices,
        None,
    );
    Ok(form_page(&signed, "Add a license", form, StatusCode::OK))
}

/// After a save: the application's page, or a page with the checks' warnings when there are.
fn saved_page(signed: &Signed, saved: LicenseSaved) -> Response {
    let href = app_href(&saved.license.application, None);
    if saved.warnings.is_empty() {
        return Redirect::to(&href).into_response();
    }
    let body = html! {
        p { "Saved " (saved.license.label) ", with warnings:" }
        ul.warnings { @for w in &saved.warnings { li { (w) } } }
        p { a href=(href) { "See " (saved.license.application) "'s position" } }
    };
    layout::page(signed, "/licenses", "License saved", body).into_response()
}

pub async fn add(
    State(state): State<WebState>,
    signed: Signed,
    Form(form): Form<LicenseForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let result = match form.row() {
        Ok(row) => licensing::add_license(&state.service, signed.name(), &row, Utc::now()).await,
        Err(problems) => return again(&state, &signed, &form, problems, None).await,
    };
    match result {
        Ok(saved) => Ok(saved_page(&signed, saved)),
        Err(e) => {
            let problems = Problems::of_invalid(e, &FIELDS)?;
            again(&state, &signed, &form, problems, None).await
        }
    }
}

/// The form shown again with what the operator typed and what is wrong with it.
async fn again(
    state: &WebState,
    signed: &Signed,
    form: &LicenseForm,
    problems: Problems,
    editing: Option<&LicenseView>,
) -> Result<Response, WebError> {
    let choices = Choices::read(&state.service).await?;
    let (action, title, fixed) = match editing {
        Some(l) => (
            format!("/licenses/{}", l.license.id),
            format!("Edit {}", l.label),
            Some(l.application.as_str()),
        ),
        None => ("/licenses".to_string(), "Add a license".to_string(), None),
    };
    let markup =
        crate::license_form::render(&action, &signed.csrf(), form, &problems, &choices, fixed);
    Ok(form_page(
        signed,
        &title,
        markup,
        StatusCode::UNPROCESSABLE_ENTITY,
    ))
}

/// The license of the path's id, as listed.
async fn find(state: &WebState, id: &str) -> Result<LicenseView, WebError> {
    let missing = || WebError::NotFound(format!("no license {id}; see the list of licenses"));
    let id: i64 = id.parse().map_err(|_| missing())?;
    licensing::licenses(state.service.store())
        .await?
        .into_iter()
        .find(|l| l.license.id == id)
        .ok_or_else(missing)
}

fn form_of(l: &LicenseView) -> LicenseForm {
    let lic = &l.license;
    let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    let text = |t: &Option<String>| t.clone().unwrap_or_default();
    LicenseForm {
        csrf: String::new(),
        application: l.application.clone(),
        metric: lic.metric.as_str().into(),
        quantity: lic.quantity.to_string(),
        assignment_type: lic.assignment_type.as_str().into(),
        assigned_to: text(&l.assigned_to_name),
        purchase_date: day(lic.purchase_date),
        valid_from: day(lic.valid_from),
        valid_until: day(lic.valid_until),
        maintenance_until: day(lic.maintenance_until),
        unit_cost: lic
            .unit_cost_minor
            .map(tally_core::import::format_cost)
            .unwrap_or_default(),
        currency: text(&lic.currency),
        vendor: text(&lic.vendor),
        order_reference: text(&lic.order_reference),
        notes: text(&lic.notes),
    }
}

/// A license's page: the form for an admin, its terms read-only for the auditor.
pub async fn edit_form(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let l = find(&state, &id).await?;
    let title = l.label.clone();
    if !signed.is_admin() {
        return Ok(form_page(
            &signed,
            &title,
            read_only(&form_of(&l)),
            StatusCode::OK,
        ));
    }
    let choices = Choices::read(&state.service).await?;
    let form = crate::license_form::render(
        &format!("/licenses/{}", l.license.id),
        &signed.csrf(),
        &form_of(&l),
        &Problems::default(),
        &choices,
        Some(&l.application),
    );
    Ok(form_page(
        &signed,
        &format!("Edit {title}"),
        form,
        StatusCode::OK,
    ))
}

fn read_only(f: &LicenseForm) -> Markup {
    let rows = [
        ("Application", &f.application),
        ("Metric", &f.metric),
        ("Quantity", &f.quantity),
        ("Assigned as", &f.assignment_type),
        ("Assigned to", &f.assigned_to),
        ("Purchased", &f.purchase_date),
        ("Valid from", &f.valid_from),
        ("Valid until", &f.valid_until),
        ("Maintenance until", &f.maintenance_until),
        ("Unit cost", &f.unit_cost),
        ("Currency", &f.currency),
        ("Vendor", &f.vendor),
        ("Order reference", &f.order_reference),
        ("Notes", &f.notes),
    ];
    html! { dl.figures #license-terms { @for (k, v) in rows { dt { (k) } dd { (v) } } } }
}

pub async fn edit(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<LicenseForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let l = find(&state, &id).await?;
    let mut form = form;
    form.application = l.application.clone();
    let row = match form.row() {
        Ok(row) => row,
        Err(problems) => return again(&state, &signed, &form, problems, Some(&l)).await,
    };
    let patch = LicenseForm::patch(&row);
    match licensing::edit_license(&state.service, signed.name(), l.license.id, &patch).await {
        Ok(saved) => Ok(saved_page(&signed, saved)),
        Err(e) => {
            let problems = Problems::of_invalid(e, &FIELDS)?;
            again(&state, &signed, &form, problems, Some(&l)).await
        }
    }
}

pub async fn remove(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let l = find(&state, &id).await?;
    licensing::delete_license(
        state.service.store(),
        signed.name(),
        l.license.id,
        Utc::now(),
    )
    .await?;
    Ok(Redirect::to("/licenses").into_response())
}
