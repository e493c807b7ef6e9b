//! Reclaim: the installations nobody used for a number of days, with what each ties up, as
//! `tally_service::reclaim` lists them (the API's, the CLI's and the report's one list),
//! narrowed by days idle, org node and application (query parameters, so every view is a URL),
//! exported to CSV, and the campaign an admin runs on them (see `campaign`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;
use tally_core::reclaim::ReclaimState;
use tally_service::reclaim::{ReclaimList, ReclaimQuery, Reclaimable};
use tally_service::reclaim_campaign;
use tally_service::ServiceError;

use crate::apps::{page_number, pager, query, PER_PAGE};
use crate::campaign;
use crate::forms::csrf_input;
use crate::layout::{self, app_href, monies};
use crate::session::Signed;
use crate::site_scope::SiteScope;
use crate::{WebError, WebState};

/// Unused this many days unless the page asks otherwise (the dashboard's figure).
pub const DEFAULT_DAYS: i64 = 90;
/// The longest idle period the page takes: ten years.
const MAX_DAYS: i64 = 3660;

/// The filters as sent (query string or a campaign form's hidden fields).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReclaimParams {
    pub days: String,
    pub application: String,
    pub org_node: String,
    pub page: String,
    /// The page of the campaign's items.
    pub campaign_page: String,
    /// At a parent: only installations on devices of this site's subtree.
    pub site: String,
}

/// The filters, checked: days idle, and the application, org node and site to narrow to.
#[derive(Clone)]
pub struct Filters {
    pub days: i64,
    pub application: String,
    pub org_node: String,
    /// A site's code as given (checked against the sites when the list is read), or empty.
    pub site: String,
}

impl Filters {
    pub fn parse(p: &ReclaimParams) -> Result<Self, WebError> {
        let days = match p.days.trim() {
            "" => DEFAULT_DAYS,
            text => text
                .parse()
                .ok()
                .filter(|d| (1..=MAX_DAYS).contains(d))
                .ok_or_else(|| {
                    WebError::BadRequest(format!(
                        "days: a number from 1 to {MAX_DAYS}, not {text:?}"
                    ))
                })?,
        };
        let texts = [
            ("application", &p.application),
            ("org_node", &p.org_node),
            ("site", &p.site),
        ];
        for (field, value) in texts {
            crate::forms::bounded(field, value)
                .map_err(|(f, why)| WebError::BadRequest(format!("{f}: {why}")))?;
        }
        Ok(Self {
            days,
            application: p.application.trim().to_string(),
            org_node: p.org_node.trim().to_string(),
            site: p.site.trim().to_string(),
        })
    }

    /// This view's URL under `path` (`/reclaim`, `/reclaim.csv`), at `page` (1: none).
    pub fn href(&self, path: &str, page: usize) -> String {
        let page = if page > 1 {
            page.to_string()
        } else {
            String::new()
        };
        let days = self.days.to_string();
        let params = [
            ("days", days.as_str()),
            ("application", &self.application),
            ("org_node", &self.org_node),
            ("site", &self.site),
            ("page", &page),
        ];
        format!("{path}{}", query(&params))
    }

    /// The filters as hidden fields, so a form sent from the view comes back to it.
    pub fn hidden(&self) -> Markup {
        html! {
            input type="hidden" name="days" value=(self.days);
            input type="hidden" name="application" value=(self.application);
            input type="hidden" name="org_node" value=(self.org_node);
            input type="hidden" name="site" value=(self.site);
        }
    }

    /// The idle installations these filters keep, as of today, on the devices of `scope`: the
    /// kept list itself unless an org node or a site narrows it (an estate's list runs to
    /// hundreds of thousands of rows).
    pub async fn list(
        &self,
        state: &WebState,
        scope: &SiteScope,
    ) -> Result<Arc<ReclaimList>, WebError> {
        let store = state.service.store();
        let mut asked = ReclaimQuery::days(Utc::now().date_naive(), self.days);
        asked.application = Some(self.application.clone()).filter(|a| !a.is_empty());
        asked.devices = scope.devices(state).await?;
        let list = state.service.reclaim_shared(&asked).await?;
        Ok(match self.org_node.as_str() {
            "" => list,
            node => {
                let all = list.as_ref().clone();
                Arc::new(reclaim_campaign::within_org_node(store, all, node).await?)
            }
        })
    }
}

/// The filter form: days, and the org node, application and site picked from lists.
async fn filter_form(state: &WebState, f: &Filters, scope: &SiteScope) -> Result<Markup, WebError> {
    let store = state.service.store();
    let nodes = tally_service::org::nodes(store).await?.into_iter();
    let mut nodes: Vec<String> = nodes.map(|n| n.node.name).collect();
    nodes.sort_by_key(|n| n.to_lowercase());
    let mut apps: Vec<String> = (store
        .applications()
        .await
        .map_err(ServiceError::from)?
        .into_iter())
    .map(|a| a.application.name)
    .collect();
    apps.sort_by_key(|n| n.to_lowercase());
    let select = |id: &str, label: &str, names: &[String], chosen: &str| {
        html! {
            label for=(id) { (label) }
            select #(id) name=(id) {
                option value="" { "any" }
                @for n in names { option value=(n) selected[n == chosen] { (n) } }
            }
        }
    };
    Ok(html! {
        form.filters method="get" action="/reclaim" role="search" {
            label for="days" { "Unused for (days)" }
            input #days type="number" name="days" min="1" max=(MAX_DAYS) value=(f.days);
            (select("org_node", "Org node", &nodes, &f.org_node))
            (select("application", "Application", &apps, &f.application))
            (scope.control())
            button type="submit" { "Show" }
            a #export-csv.button href=(f.href("/reclaim.csv", 1)) download { "Export CSV" }
        }
    })
}

pub async fn page(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<ReclaimParams>,
) -> Result<Html<String>, WebError> {
    let f = Filters::parse(&q)?;
    let scope = SiteScope::read(&state, &f.site).await?;
    let list = f.list(&state, &scope).await?;
    let camp = reclaim_campaign::campaign(state.service.store()).await?;
    let on_list: HashMap<(&str, i64), ReclaimState> = (camp.items.iter())
        .map(|i| ((i.item.application.as_str(), i.item.device_id), i.state))
        .collect();
    let page = page_number(&q.page);
    let tied = &list.idle_value;
    let row = |r: &Reclaimable| {
        idle_row(
            &signed,
            &f,
            r,
            on_list.get(&(r.application.as_str(), r.device_id)),
        )
    };
    let all_sites = Filters {
        site: String::new(),
        ..f.clone()
    };
    let body = html! {
        (scope.banner(&all_sites.href("/reclaim", 1), "The campaign below holds every site's items."))
        (filter_form(&state, &f, &scope).await?)
        p.lead #reclaim-summary { (list.idle.len()) " of " (list.known_installations) " installations whose use is known were unused since " (list.unused_since.date_naive()) "; they tie up " (monies(tied)) "." }
        table #reclaim {
            thead { tr { th { "Application" } th { "Computer" } th { "Installed" } th { "Last used" } th.num { "Days unused" } th.num { "Cost" } th { "License" } th { "Campaign" } } }
            tbody {
                @for r in list.idle.iter().skip((page - 1) * PER_PAGE).take(PER_PAGE) { (row(r)) }
                @if list.idle.is_empty() { tr { td colspan="8" { "Nothing to reclaim." } } }
            }
        }
        (pager(page, list.idle.len(), |n| f.href("/reclaim", n)))
        @if !list.no_usage_data.is_empty() {
            h2 { "Use not known" }
            ul { @for n in &list.no_usage_data { li { (n.application) ": " (n.installations) " installations — " (n.reason) } } }
        }
        (campaign::section(&signed, &f, &camp, &q))
    };
    Ok(layout::page(&signed, "/reclaim", "Reclaim", body))
}

/// An idle installation's row; admins get a button putting it on the campaign's list.
fn idle_row(
    signed: &Signed,
    f: &Filters,
    r: &Reclaimable,
    on_list: Option<&ReclaimState>,
) -> Markup {
    html! {
        tr {
            td { a href=(app_href(&r.application, None)) { (r.application) } }
            td { (r.host_name) } td { (r.package) " " (r.version) }
            td { (r.last_used.map(|t| t.date_naive().to_string()).unwrap_or_else(|| "never".into())) }
            td.num { (r.days_unused.map(|d| d.to_string()).unwrap_or_default()) }
            td.num { (monies(r.cost.as_ref())) }
            td { (r.license.as_deref().unwrap_or("")) }
            td {
                @match (on_list, signed.is_admin()) {
                    (Some(state), _) => span.status { (state.as_str()) },
                    (None, true) => form.inline method="post" action="/reclaim/propose" {
                        (csrf_input(&signed.csrf()))
                        (f.hidden())
                        input type="hidden" name="item_application" value=(r.application);
                        input type="hidden" name="device_id" value=(r.device_id);
                        button.propose type="submit" aria-label={"Propose reclaiming " (r.application) " on " (r.host_name)} { "Propose" }
                    },
                    (None, false) => {},
                }
            }
        }
    }
}

/// The filtered idle list as a CSV download.
pub async fn csv(
    State(state): State<WebState>,
    _signed: Signed,
    Query(q): Query<ReclaimParams>,
) -> Result<Response, WebError> {
    let f = Filters::parse(&q)?;
    let scope = SiteScope::read(&state, &f.site).await?;
    let list = f.list(&state, &scope).await?;
    let bytes = reclaim_campaign::idle_csv(&list)?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let name = format!("attachment; filename=\"reclaim-{}.csv\"", list.as_of);
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&name).expect("a date is a header value"),
    );
    Ok(response)
}
