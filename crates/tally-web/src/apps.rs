//! Applications: the list of positions (sortable, filterable, searchable, paged on the server,
//! every view a stable URL) and an application's page as of any day. Both show what
//! `tally_service::compliance` computed; nothing is recomputed here.

use axum::extract::{Path, Query, State};
use axum::response::Html;
use chrono::{NaiveDate, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use tally_core::compliance::Consumer;
use tally_service::compliance::{AppDetail, AppPosition};

use crate::layout::{self, app_href, encode, monies, status_class, status_text, words};
use crate::session::Signed;
use crate::site_scope::SiteScope;
use crate::{WebError, WebState};

/// What a position narrowed to a site still counts whole.
const LICENSES_WHOLE: &str = "Owned counts all of this site's licenses.";

/// Rows per page of every list.
pub const PER_PAGE: usize = 50;

/// The day a page is for: `as_of` when given (YYYY-MM-DD), else today.
pub fn day(as_of: &str) -> Result<NaiveDate, WebError> {
    match as_of.trim() {
        "" => Ok(Utc::now().date_naive()),
        text => NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            WebError::BadRequest(format!("as_of: give a day as YYYY-MM-DD, not {text:?}"))
        }),
    }
}

/// The 1-based page asked for; 1 when absent or not a number.
pub fn page_number(page: &str) -> usize {
    page.parse::<usize>().ok().filter(|p| *p >= 1).unwrap_or(1)
}

/// A query string of the non-empty `params`.
pub fn query(params: &[(&str, &str)]) -> String {
    let pairs: Vec<String> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    match pairs.is_empty() {
        true => String::new(),
        false => format!("?{}", pairs.join("&")),
    }
}

/// Links to the pages before and after `page` of `total` rows; `href` makes a page's URL.
pub fn pager(page: usize, total: usize, href: impl Fn(usize) -> String) -> Markup {
    let pages = total.div_ceil(PER_PAGE).max(1);
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a rel="prev" href=(href(page - 1)) { "← Previous" } }
            span { "Page " (page) " of " (pages) " · " (total) " rows" }
            @if page < pages { a rel="next" href=(href(page + 1)) { "Next →" } }
        }
    }
}

/// A list's page number, its only query parameter.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PageQuery {
    pub page: String,
}

/// Page `page` (the query's text) of `items`, and the links to the others: `href` makes a
/// page's URL.
pub fn paged<'a, T>(
    items: &'a [T],
    page: &str,
    href: impl Fn(usize) -> String,
) -> (&'a [T], usize, Markup) {
    let page = page_number(page);
    let start = (page - 1).saturating_mul(PER_PAGE).min(items.len());
    let rows = &items[start..(start + PER_PAGE).min(items.len())];
    (rows, start, pager(page, items.len(), href))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    q: String,
    status: String,
    /// Only applications measured in this metric (`installations`, `users`, …).
    metric: String,
    sort: String,
    dir: String,
    page: String,
    as_of: String,
    /// At a parent: only the demand of this site's subtree (see `site_scope`).
    site: String,
}

/// The columns the list sorts by.
const SORTS: [&str; 8] = [
    "name",
    "metric",
    "required",
    "owned",
    "shortfall",
    "surplus",
    "cost",
    "status",
];

fn sort(positions: &mut [AppPosition], by: &str, descending: bool) {
    let cost = |p: &AppPosition| p.shortfall_cost.as_ref().map_or(-1, |m| m.minor);
    positions.sort_by(|a, b| {
        let order = match by {
            "metric" => a.metric.as_str().cmp(b.metric.as_str()),
            "required" => a.required.cmp(&b.required),
            "owned" => a.owned.cmp(&b.owned),
            "shortfall" => a.shortfall.cmp(&b.shortfall),
            "surplus" => a.surplus.cmp(&b.surplus),
            "cost" => cost(a).cmp(&cost(b)),
            "status" => status_text(&a.status).cmp(status_text(&b.status)),
            _ => a
                .application
                .to_lowercase()
                .cmp(&b.application.to_lowercase()),
        };
        match descending {
            true => order.reverse(),
            false => order,
        }
    });
}

fn matches(p: &AppPosition, q: &str, (status, metric): (&str, &str)) -> bool {
    let q = q.trim().to_lowercase();
    let found = q.is_empty()
        || p.application.to_lowercase().contains(&q)
        || p.publisher.to_lowercase().contains(&q);
    let wanted = status.is_empty() || status_text(&p.status).replace('-', "_") == status;
    found && wanted && (metric.is_empty() || p.metric.as_str() == metric)
}

pub async fn list(
    State(state): State<WebState>,
    signed: Signed,
    Query(query_of): Query<ListQuery>,
) -> Result<Html<String>, WebError> {
    let q = &query_of;
    for (field, value) in [("q", &q.q), ("metric", &q.metric)] {
        crate::forms::bounded(field, value)
            .map_err(|(f, why)| WebError::BadRequest(format!("{f}: {why}")))?;
    }
    let as_of = day(&q.as_of)?;
    let sort_by = SORTS
        .iter()
        .find(|s| **s == q.sort)
        .copied()
        .unwrap_or("name");
    let descending = q.dir == "desc";
    let scope = SiteScope::read(&state, &q.site).await?;
    let site = scope.code();
    let sites = scope.sites.as_deref();
    let mut positions = tally_service::scope::positions(&state.service, as_of, None, sites).await?;
    let mut metrics: Vec<&'static str> = positions.iter().map(|p| p.metric.as_str()).collect();
    metrics.sort_unstable();
    metrics.dedup();
    positions.retain(|p| matches(p, &q.q, (&q.status, &q.metric)));
    sort(&mut positions, sort_by, descending);
    let page = page_number(&q.page);
    let total = positions.len();
    let shown: Vec<&AppPosition> = positions
        .iter()
        .skip((page - 1) * PER_PAGE)
        .take(PER_PAGE)
        .collect();
    let href = |sort: &str, dir: &str, page: usize| {
        let page = page.to_string();
        let params = [
            ("q", q.q.as_str()),
            ("status", &q.status),
            ("metric", &q.metric),
            ("sort", sort),
            ("dir", dir),
            ("as_of", &q.as_of),
            ("site", &site),
            ("page", &page),
        ];
        format!("/applications{}", query(&params))
    };
    let header = |column: &str, title: &str, class: &str| {
        let next = if column == sort_by && !descending {
            "desc"
        } else {
            "asc"
        };
        let current = (column == sort_by).then_some(if descending {
            "descending"
        } else {
            "ascending"
        });
        html! { th.(class) aria-sort=[current] { a href=(href(column, next, 1)) { (title) } } }
    };
    let past = match q.as_of.is_empty() {
        true => String::new(),
        false => as_of.to_string(),
    };
    let all_sites = format!("/applications{}", query(&[("as_of", &q.as_of)]));
    let body = html! {
        (scope.banner(&all_sites, LICENSES_WHOLE))
        (filters(q, &metrics, &scope))
        table #applications {
            thead { tr {
                (header("name", "Application", "")) (header("metric", "Metric", ""))
                (header("required", "Required", "num")) (header("owned", "Owned", "num"))
                (header("shortfall", "Shortfall", "num")) (header("surplus", "Surplus", "num"))
                (header("cost", "Shortfall cost", "num")) (header("status", "Status", ""))
            } }
            tbody {
                @for p in &shown {
                    tr {
                        td { a href=(app_link(&p.application, &past, &site)) { (p.application) } br; small { (p.publisher) } }
                        td { (words(p.metric.as_str())) }
                        td.num { (p.required) } td.num { (p.owned) }
                        td.num { (p.shortfall) } td.num { (p.surplus) }
                        td.num { (monies(p.shortfall_cost.as_ref())) }
                        td { span.status.(status_class(&p.status)) { (status_text(&p.status)) } }
                    }
                }
                @if shown.is_empty() { tr { td colspan="8" { "No application matches." } } }
            }
        }
        (pager(page, total, |n| href(sort_by, &q.dir, n)))
    };
    Ok(layout::page(&signed, "/applications", "Applications", body))
}

/// Application `name`'s page as of `as_of` (a day, or empty for today) over the subtree of
/// `site` (a code, or empty for the whole subtree).
pub fn app_link(name: &str, as_of: &str, site: &str) -> String {
    let params = [("as_of", as_of), ("site", site)];
    format!("{}{}", app_href(name, None), query(&params))
}

/// The search, status, date and site filters; a GET form, so every view is a URL.
fn filters(q: &ListQuery, metrics: &[&str], scope: &SiteScope) -> Markup {
    let statuses = [
        ("", "any status"),
        ("under_licensed", "under-licensed"),
        ("over_licensed", "over-licensed"),
        ("compliant", "compliant"),
        ("not_calculated", "not calculated"),
    ];
    html! {
        form.filters method="get" action="/applications" role="search" {
            label for="q" { "Search" }
            input #q type="search" name="q" value=(q.q) maxlength="255" placeholder="name or publisher";
            label for="status" { "Status" }
            select #status name="status" {
                @for (value, text) in statuses {
                    option value=(value) selected[q.status == value] { (text) }
                }
            }
            label for="metric" { "Metric" }
            select #metric name="metric" {
                option value="" { "any metric" }
                @for m in metrics { option value=(m) selected[q.metric == *m] { (words(m)) } }
            }
            label for="as_of" { "As of" }
            input #as_of type="date" name="as_of" value=(q.as_of);
            (scope.control())
            input type="hidden" name="sort" value=(q.sort);
            input type="hidden" name="dir" value=(q.dir);
            button type="submit" { "Show" }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DetailQuery {
    as_of: String,
    page: String,
    /// At a parent: only the demand and use of this site's subtree.
    site: String,
}

pub async fn detail(
    State(state): State<WebState>,
    signed: Signed,
    Path(name): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Html<String>, WebError> {
    let as_of = day(&q.as_of)?;
    let page = page_number(&q.page);
    let offset = i64::try_from((page - 1) * PER_PAGE).unwrap_or(i64::MAX);
    let limit = PER_PAGE as i64;
    let scope = SiteScope::read(&state, &q.site).await?;
    let (site, sites) = (scope.code(), scope.sites.as_deref());
    let consumers_page = (limit, offset);
    let d =
        tally_service::scope::position_detail(&state.service, as_of, &name, consumers_page, sites)
            .await?;
    let body = html! {
        (scope.banner(&app_link(&name, &q.as_of, ""), LICENSES_WHOLE))
        form.filters method="get" action=(app_href(&name, None)) {
            label for="as_of" { "As of" }
            input #as_of type="date" name="as_of" value=(as_of);
            (scope.control())
            button type="submit" { "Show" }
        }
        (figures(&d))
        (by_node(&d))
        (license_lines(&d))
        (crate::app_usage::sections(&state, &name, as_of, sites).await?)
        p { a #concurrency-link href=(crate::concurrency::href(&d.position.application, (&q.as_of, ""), &site)) { "Concurrent use over time →" } }
        (consumers(&d))
        @let total = d.uncovered_consumers.total.max(d.excluded_consumers.total);
        (pager(page, usize::try_from(total).unwrap_or(0), |n| {
            let params = [("as_of", q.as_of.as_str()), ("site", &site), ("page", &n.to_string())];
            format!("{}{}", app_href(&name, None), query(&params))
        }))
    };
    let title = format!("{} as of {as_of}", d.position.application);
    Ok(layout::page(&signed, "/applications", &title, body))
}

fn figures(d: &AppDetail) -> Markup {
    let p = &d.position;
    html! {
        dl.figures #position {
            dt { "Status" } dd { span.status.(status_class(&p.status)) { (status_text(&p.status)) } }
            dt { "Metric" } dd { (words(p.metric.as_str())) }
            dt { "Required" } dd #required { (p.required) }
            dt { "Owned" } dd #owned { (p.owned) }
            dt { "Covered" } dd { (p.covered) }
            dt { "Shortfall" } dd #shortfall { (p.shortfall) }
            dt { "Surplus" } dd { (p.surplus) }
            dt { "Shortfall cost" } dd { (monies(p.shortfall_cost.as_ref())) }
            dt { "Idle license value" } dd { (monies(&p.surplus_value)) }
        }
        @if !p.reason.is_empty() { p.reason { (p.reason) } }
    }
}

fn by_node(d: &AppDetail) -> Markup {
    html! {
        h2 { "Demand per org node" }
        table #by-node {
            thead { tr { th { "Org node" } th.num { "Required" } th.num { "Covered" } } }
            tbody {
                @for n in &d.by_node { tr { td { (n.org_node_name) } td.num { (n.required) } td.num { (n.covered) } } }
                @if d.by_node.is_empty() { tr { td colspan="3" { "No demand." } } }
            }
        }
    }
}

fn license_lines(d: &AppDetail) -> Markup {
    html! {
        h2 { "Licenses" }
        table #licenses {
            thead { tr { th { "License" } th { "Valid" } th.num { "Used" } th.num { "Idle" } th.num { "Unit cost" } th { "Note" } } }
            tbody {
                @for l in &d.licenses {
                    tr {
                        td { a href={"/licenses/" (l.license_id)} { (l.label) } }
                        td { (if l.valid { "yes" } else { "no" }) }
                        td.num { (l.used) } td.num { (l.idle) }
                        td.num { (monies(l.unit_cost.as_ref())) }
                        td { (l.reason.as_deref().unwrap_or("")) }
                    }
                }
                @if d.licenses.is_empty() { tr { td colspan="6" { "No license." } } }
            }
        }
    }
}

fn kind(c: &Consumer) -> &'static str {
    match c {
        Consumer::Device(_) => "computer",
        Consumer::User(_) => "user",
        Consumer::Custom(_) => "custom value",
    }
}

fn consumers(d: &AppDetail) -> Markup {
    html! {
        h2 { "Uncovered (" (d.uncovered_consumers.total) ")" }
        table #uncovered {
            thead { tr { th { "Name" } th { "Kind" } th { "Org node" } th.num { "Missing" } } }
            tbody {
                @for c in &d.uncovered_consumers.items {
                    tr { td { (c.name) } td { (kind(&c.consumer)) } td { (c.org_node_name.as_deref().unwrap_or("—")) } td.num { (c.missing.unwrap_or(0)) } }
                }
            }
        }
        h2 { "Excluded (" (d.excluded_consumers.total) ")" }
        table #excluded {
            thead { tr { th { "Name" } th { "Kind" } th { "Org node" } th { "Reason" } } }
            tbody {
                @for c in &d.excluded_consumers.items {
                    tr { td { (c.name) } td { (kind(&c.consumer)) } td { (c.org_node_name.as_deref().unwrap_or("—")) } td { (c.reason.as_deref().unwrap_or("")) } }
                }
            }
        }
    }
}
