//! Reclaim: the installations nobody used for a number of days, with what each ties up, as
//! `tally_service::reclaim` lists them (the API's, the CLI's and the report's one list). Read
//! only here: marking a campaign's progress is issue 17's later part.

use axum::extract::{Query, State};
use axum::response::Html;
use chrono::Utc;
use maud::html;
use serde::Deserialize;
use tally_service::reclaim::ReclaimQuery;

use crate::apps::{page_number, pager, query, PER_PAGE};
use crate::layout::{self, app_href, monies};
use crate::session::Signed;
use crate::{WebError, WebState};

/// Unused this many days unless the page asks otherwise (the dashboard's figure).
pub const DEFAULT_DAYS: i64 = 90;
/// The longest idle period the page takes: ten years.
const MAX_DAYS: i64 = 3660;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReclaimParams {
    days: String,
    application: String,
    page: String,
}

pub async fn page(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<ReclaimParams>,
) -> Result<Html<String>, WebError> {
    let days = match q.days.trim() {
        "" => DEFAULT_DAYS,
        text => text
            .parse()
            .ok()
            .filter(|d| (1..=MAX_DAYS).contains(d))
            .ok_or_else(|| {
                WebError::BadRequest(format!("days: a number from 1 to {MAX_DAYS}, not {text:?}"))
            })?,
    };
    crate::forms::bounded("application", &q.application)
        .map_err(|(f, why)| WebError::BadRequest(format!("{f}: {why}")))?;
    let mut asked = ReclaimQuery::days(Utc::now().date_naive(), days);
    asked.application = Some(q.application.trim().to_string()).filter(|a| !a.is_empty());
    let list = state.service.reclaim(&asked).await?;
    let page = page_number(&q.page);
    let days_text = days.to_string();
    let body = html! {
        form.filters method="get" action="/reclaim" role="search" {
            label for="days" { "Unused for (days)" }
            input #days type="number" name="days" min="1" max=(MAX_DAYS) value=(days);
            label for="application" { "Application" }
            input #application type="search" name="application" value=(q.application) maxlength="255";
            button type="submit" { "Show" }
        }
        p.lead { (list.idle.len()) " of " (list.known_installations) " installations whose use is known were unused since " (list.unused_since.date_naive()) "; they tie up " (monies(&crate::dashboard::totals(list.idle.iter().filter_map(|r| r.cost.as_ref())))) "." }
        table #reclaim {
            thead { tr { th { "Application" } th { "Computer" } th { "Installed" } th { "Last used" } th.num { "Days unused" } th.num { "Cost" } th { "License" } } }
            tbody {
                @for r in list.idle.iter().skip((page - 1) * PER_PAGE).take(PER_PAGE) {
                    tr {
                        td { a href=(app_href(&r.application, None)) { (r.application) } }
                        td { (r.host_name) } td { (r.package) " " (r.version) }
                        td { (r.last_used.map(|t| t.date_naive().to_string()).unwrap_or_else(|| "never".into())) }
                        td.num { (r.days_unused.map(|d| d.to_string()).unwrap_or_default()) }
                        td.num { (monies(r.cost.as_ref())) }
                        td { (r.license.as_deref().unwrap_or("")) }
                    }
                }
                @if list.idle.is_empty() { tr { td colspan="7" { "Nothing to reclaim." } } }
            }
        }
        (pager(page, list.idle.len(), |n| format!("/reclaim{}", query(&[("days", &days_text), ("application", &q.application), ("page", &n.to_string())]))))
        @if !list.no_usage_data.is_empty() {
            h2 { "Use not known" }
            ul { @for n in &list.no_usage_data { li { (n.application) ": " (n.installations) " installations — " (n.reason) } } }
        }
    };
    Ok(layout::page(&signed, "/reclaim", "Reclaim", body))
}
