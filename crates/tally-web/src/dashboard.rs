//! The dashboard: the position at a glance, each figure a link to the list behind it.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Html;
use chrono::Utc;
use maud::{html, Markup};
use tally_core::compliance::{Money, Status};
use tally_core::licenses::Ends;
use tally_service::licensing;
use tally_service::reclaim::ReclaimQuery;

use crate::layout::{self, monies};
use crate::session::Signed;
use crate::{WebError, WebState};

/// Installations unused this many days count as reclaimable on the dashboard.
const IDLE_DAYS: i64 = crate::reclaim::DEFAULT_DAYS;
/// Licenses and maintenance ending within this many days are "expiring soon".
const EXPIRING_DAYS: i64 = 90;
/// The expiring licenses listed by name on the dashboard; the rest are a link away.
const EXPIRING_LISTED: usize = 8;

/// A figure: what it counts, the number, and the page it links to.
fn tile(label: &str, value: String, href: &str, class: &str) -> Markup {
    html! {
        a.tile.(class) href=(href) {
            span.figure { (value) }
            span.label { (label) }
        }
    }
}

/// Sums of money per currency.
pub fn totals<'m>(items: impl IntoIterator<Item = &'m Money>) -> Vec<Money> {
    let mut sums = BTreeMap::<String, i64>::new();
    for m in items {
        let sum = sums.entry(m.currency.clone()).or_default();
        *sum = sum.saturating_add(m.minor);
    }
    sums.into_iter()
        .map(|(currency, minor)| Money { minor, currency })
        .collect()
}

pub async fn page(State(state): State<WebState>, signed: Signed) -> Result<Html<String>, WebError> {
    let store = state.service.store();
    let today = Utc::now().date_naive();
    let positions = state.service.positions(today, None).await?;
    let idle = state
        .service
        .reclaim(&ReclaimQuery::days(today, IDLE_DAYS))
        .await?;
    let expiring = licensing::expiring(store, today, EXPIRING_DAYS).await?;
    let count = |s: Status| positions.iter().filter(|p| p.status == s).count();
    let shortfall = totals(positions.iter().filter_map(|p| p.shortfall_cost.as_ref()));
    let surplus = totals(positions.iter().flat_map(|p| &p.surplus_value));
    let freed = totals(idle.idle.iter().filter_map(|r| r.cost.as_ref()));
    let body = html! {
        p.lead { "The position on " (today) " across " (positions.len()) " applications." }
        section.tiles aria-label="Position" {
            (tile("applications under-licensed", count(Status::UnderLicensed).to_string(),
                "/applications?status=under_licensed", "bad"))
            (tile("applications over-licensed", count(Status::OverLicensed).to_string(),
                "/applications?status=over_licensed", "warn"))
            (tile("to buy to cover the shortfall", monies(&shortfall),
                "/applications?status=under_licensed&sort=cost&dir=desc", "bad"))
            (tile("in idle licenses", monies(&surplus),
                "/applications?status=over_licensed&sort=surplus&dir=desc", "warn"))
            (tile(&format!("reclaim would free ({} installations unused {IDLE_DAYS} days)", idle.idle.len()),
                monies(&freed), &format!("/reclaim?days={IDLE_DAYS}"), "muted"))
            (tile(&format!("license and maintenance ends in the next {EXPIRING_DAYS} days"),
                expiring.len().to_string(), &format!("/licenses?expiring={EXPIRING_DAYS}"), "muted"))
        }
        @if !expiring.is_empty() {
            h2 { "Ending soon" }
            table {
                thead { tr { th { "License" } th { "What ends" } th { "On" } th.num { "Days left" } } }
                tbody {
                    @for e in expiring.iter().take(EXPIRING_LISTED) {
                        tr {
                            td { a href={"/licenses/" (e.license_id)} { (e.label) } }
                            td { (match e.ends { Ends::Validity => "validity", Ends::Maintenance => "maintenance" }) }
                            td { (e.ends_on) }
                            td.num { (e.days_left) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&signed, "/", "Dashboard", body))
}
