//! Usage and metering: the metering rules (added, switched on and off by an admin through
//! `tally_service::rules`, audited; rules made by a parent site marked as inherited), and the
//! programs they meter with runs, users, computers and hours by month from the monthly
//! summaries.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{Datelike, Months, NaiveDate, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use tally_core::rules::RuleSpec;
use tally_core::MeteringRule;

use crate::admin::when;
use crate::apps::{paged, query, PageQuery};
use crate::devices::{hours, month};
use crate::forms::{csrf_input, field, Problems};
use crate::session::Signed;
use crate::site_scope::SiteScope;
use crate::{layout, WebError, WebState};

fn origin(rule: &MeteringRule, here: &tally_core::SiteCode) -> String {
    match &rule.site_code == here {
        true => rule.origin.as_str().to_string(),
        false => format!("inherited from site {}", rule.site_code),
    }
}

/// The fields of the add form, as the service names them in a refusal.
const ADD_FIELDS: [&str; 4] = ["name", "file_name", "file_version", "product_name"];

fn add_form(signed: &Signed, v: &RuleForm, problems: &Problems) -> Markup {
    let input = |id: &str, label: &str, value: &str, hint: &str| {
        let control = html! { input id=(id) name=(id) type="text" maxlength="255" value=(value) placeholder=(hint); };
        field(label, id, control, problems)
    };
    html! {
        form.filters #rule-form method="post" action="/rules" novalidate {
            @for e in problems.general(&ADD_FIELDS) { p.error role="alert" { (e) } }
            (csrf_input(&signed.csrf()))
            (input("name", "Name", &v.name, "e.g. Office"))
            (input("file_name", "File name", &v.file_name, "e.g. soffice.bin"))
            (input("file_version", "Version", &v.file_version, "* for any"))
            (input("product_name", "Product", &v.product_name, ""))
            button type="submit" { "Add a rule" }
        }
    }
}

pub async fn list(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let adding = (&RuleForm::default(), &Problems::default());
    list_page(&state, &signed, &q.page, adding).await
}

/// The list of rules, with the add form as typed and its problems (422 when there are).
async fn list_page(
    state: &WebState,
    signed: &Signed,
    page: &str,
    (adding, problems): (&RuleForm, &Problems),
) -> Result<Response, WebError> {
    let mut all = state.service.store().rules().await?;
    all.sort_by_key(|r| (r.spec.name.to_lowercase(), r.id));
    let (rules, _, pages) = paged(&all, page, |n| format!("/rules?page={n}"));
    let here = state.service.site();
    let body = html! {
        p { a href="/programs" { "Programs by month →" } }
        @if signed.is_admin() { (add_form(signed, adding, problems)) }
        table #rules {
            thead { tr { th { "Name" } th { "File name" } th { "Version" } th { "Product" } th { "Made" } th { "Changed" } th { "On" } } }
            tbody {
                @for r in rules {
                    tr id={"rule-" (r.id)} { td { a href={"/rules/" (r.id)} { (r.spec.name) } } td { (r.spec.file_name) } td { (r.spec.file_version) } td { (r.spec.product_name) }
                        td { (origin(r, here)) } td { (when(Some(r.updated_at))) }
                        td { (switch(signed, r)) } }
                }
                @if rules.is_empty() { tr { td colspan="7" { "No metering rules yet." } } }
            }
        }
        (pages)
    };
    let status = match problems.is_empty() {
        true => StatusCode::OK,
        false => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Ok((
        status,
        layout::page(signed, "/rules", "Metering rules", body),
    )
        .into_response())
}

/// On or off; for an admin, the button that flips it.
fn switch(signed: &Signed, r: &MeteringRule) -> Markup {
    let (now, then, label) = match r.spec.enabled {
        true => ("on", "false", "Switch off"),
        false => ("off", "true", "Switch on"),
    };
    html! {
        (now)
        @if signed.is_admin() {
            " " form.inline method="post" action={"/rules/" (r.id) "/enabled"} {
                (csrf_input(&signed.csrf())) input type="hidden" name="enabled" value=(then);
                button type="submit" { (label) }
            }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RuleForm {
    csrf: String,
    name: String,
    file_name: String,
    file_version: String,
    product_name: String,
}

/// Adds a rule; a refusal (the service's validation, a name in use) is shown on the form.
pub async fn add(
    State(state): State<WebState>,
    signed: Signed,
    Form(form): Form<RuleForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let mut problems = Problems::of_lengths(&[
        ("name", &form.name),
        ("file_name", &form.file_name),
        ("file_version", &form.file_version),
        ("product_name", &form.product_name),
    ]);
    if problems.is_empty() {
        let mut spec = RuleSpec::named(form.name.trim());
        spec.file_name = form.file_name.trim().into();
        spec.file_version = form.file_version.trim().into();
        spec.product_name = form.product_name.trim().into();
        match tally_service::rules::create(&state.service, signed.name(), &spec).await {
            Ok(rule) => {
                return Ok(Redirect::to(&format!("/rules#rule-{}", rule.id)).into_response())
            }
            Err(e) => problems = crate::rule_edit::refused(e, &ADD_FIELDS)?,
        }
    }
    list_page(&state, &signed, "", (&form, &problems)).await
}

#[derive(Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: String,
}

pub async fn set_enabled(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<SwitchForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let missing = || WebError::NotFound("no such rule; see the rule list".into());
    let id: i64 = id.parse().map_err(|_| missing())?;
    let enabled = match form.enabled.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(WebError::BadRequest("enabled: true or false".into())),
    };
    let rule = state.service.store().rule(id).await?.ok_or_else(missing)?;
    let spec = RuleSpec {
        enabled,
        ..rule.spec
    };
    tally_service::rules::update(&state.service, signed.name(), id, &spec).await?;
    Ok(Redirect::to(&format!("/rules#rule-{id}")).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MonthsQuery {
    from: String,
    to: String,
    page: String,
    /// At a parent: only the use on devices of this site's subtree.
    site: String,
}

/// `2026-03` as `202603`, or why not.
fn month_key(field: &str, text: &str, default: NaiveDate) -> Result<i32, WebError> {
    let day = match text.trim() {
        "" => default,
        t => NaiveDate::parse_from_str(&format!("{t}-01"), "%Y-%m-%d")
            .map_err(|_| WebError::BadRequest(format!("{field}: a month as YYYY-MM")))?,
    };
    Ok(day.year() * 100 + day.month() as i32)
}

/// Every metered program's runs, users, computers and time per month.
pub async fn programs(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<MonthsQuery>,
) -> Result<Response, WebError> {
    let today = Utc::now().date_naive();
    let year_ago = today.checked_sub_months(Months::new(11)).unwrap_or(today);
    let (from, to) = (
        month_key("from", &q.from, year_ago)?,
        month_key("to", &q.to, today)?,
    );
    let scope = SiteScope::read(&state, &q.site).await?;
    let site = scope.code();
    let store = state.service.store();
    let names: HashMap<i64, String> = store
        .rules()
        .await?
        .into_iter()
        .map(|r| (r.id, r.spec.name))
        .collect();
    let mut rows = store
        .monthly_totals((from, to), scope.sites.as_deref())
        .await?;
    let name = |id: i64| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("rule {id}"))
    };
    rows.sort_by_key(|r| {
        let key = (name(r.rule_id).to_lowercase(), r.rule_id);
        (key, std::cmp::Reverse(r.month))
    });
    let href = |n: usize| {
        let page = n.to_string();
        format!(
            "/programs{}",
            query(&[
                ("from", &q.from),
                ("to", &q.to),
                ("site", &site),
                ("page", &page)
            ])
        )
    };
    let (shown, _, pages) = paged(&rows, &q.page, href);
    let all_sites = format!("/programs{}", query(&[("from", &q.from), ("to", &q.to)]));
    let body = html! {
        p { a href="/rules" { "← Metering rules" } }
        (scope.banner(&all_sites, ""))
        form.filters method="get" action="/programs" {
            label for="from" { "From" } input #from name="from" type="month" value=(month(from));
            label for="to" { "To" } input #to name="to" type="month" value=(month(to));
            (scope.control())
            button type="submit" { "Show" }
        }
        table #programs {
            thead { tr { th { "Program" } th { "Month" } th.num { "Runs" } th.num { "Users" } th.num { "Computers" } th.num { "Time" } } }
            tbody {
                @for r in shown { tr { td { (name(r.rule_id)) } td { (month(r.month)) } td.num { (r.runs) } td.num { (r.users) } td.num { (r.devices) } td.num { (hours(r.usage_ms)) } } }
                @if rows.is_empty() { tr { td colspan="6" { "No metered use in these months (the monthly summaries are made by the summarize_monthly_usage task)." } } }
            }
        }
        (pages)
    };
    Ok(layout::page(&signed, "/rules", "Programs by month", body).into_response())
}
