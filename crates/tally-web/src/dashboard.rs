//! The dashboard: the position at a glance, each figure a link to the list behind it.

use axum::extract::State;
use axum::response::Html;
use chrono::Utc;
use maud::{html, Markup, PreEscaped};
use tally_core::compliance::{Money, Status};
use tally_core::licenses::Ends;
use tally_report::Chart;
use tally_service::dashboard::{agent_trouble, position_trend, AgentTrouble, DayFigures};
use tally_service::licensing;
use tally_service::reclaim::ReclaimQuery;
use tally_service::reclaim_campaign::per_currency;

use crate::layout::{self, monies};
use crate::session::Signed;
use crate::{WebError, WebState};

/// Installations unused this many days count as reclaimable on the dashboard.
const IDLE_DAYS: i64 = crate::reclaim::DEFAULT_DAYS;
/// Licenses and maintenance ending within this many days are "expiring soon".
const EXPIRING_DAYS: i64 = 90;
/// The expiring licenses listed by name on the dashboard; the rest are a link away.
const EXPIRING_LISTED: usize = 8;

/// The trend covers this many days back, a point every [`TREND_STEP`] days.
const TREND_DAYS: i64 = 91;
const TREND_STEP: i64 = 7;
/// An agent silent this long has stopped reporting: its heartbeat comes every 5 minutes.
const SILENT_MINUTES: i64 = 60;
/// Where the console lists agents (the administration pages).
const AGENTS_HREF: &str = "/admin/agents";

/// A chart of the reports' kind (`tally_report::chart_svg`, which escapes every label),
/// linking to the page behind it.
fn chart(href: &str, title: String, unit: &str, bars: Vec<(String, f64)>) -> Markup {
    let svg = tally_report::chart_svg(&Chart::Bars {
        title,
        unit: unit.into(),
        bars,
    });
    html! { a.chart href=(href) { (PreEscaped(svg)) } }
}

/// The money of each currency in `figures`, per day, as one chart each.
fn money_charts(
    trend: &[DayFigures],
    of: fn(&DayFigures) -> &Vec<Money>,
    (title, href): (&str, &str),
) -> Markup {
    let mut currencies: Vec<&str> = trend
        .iter()
        .flat_map(|f| of(f).iter().map(|m| m.currency.as_str()))
        .collect();
    currencies.sort_unstable();
    currencies.dedup();
    html! {
        @for currency in currencies {
            (chart(href, format!("{title} ({currency})"), currency, trend.iter().map(|f| {
                let minor = of(f).iter().find(|m| m.currency == currency).map_or(0, |m| m.minor);
                (f.day.to_string(), minor as f64 / 100.0)
            }).collect()))
        }
    }
}

/// The position's trend from the daily snapshots, a chart per figure.
fn trend_charts(trend: &[DayFigures]) -> Markup {
    let counts = |of: fn(&DayFigures) -> usize| -> Vec<(String, f64)> {
        trend
            .iter()
            .map(|f| (f.day.to_string(), of(f) as f64))
            .collect()
    };
    html! {
        h2 #trend-heading { "Trend (weekly, from the daily snapshots)" }
        @if trend.is_empty() {
            p.hint { "No compliance snapshots yet: the snapshot-compliance task takes one a day." }
        } @else {
            p.hint { "Money at today's unit prices: a snapshot keeps units only." }
            section.charts #trend aria-labelledby="trend-heading" {
                (chart("/applications?status=under_licensed", "Applications under-licensed".into(), "applications", counts(|f| f.under_licensed)))
                (chart("/applications?status=over_licensed", "Applications over-licensed".into(), "applications", counts(|f| f.over_licensed)))
                (money_charts(trend, |f| &f.shortfall_cost, ("Shortfall cost", "/applications?status=under_licensed&sort=cost&dir=desc")))
                (money_charts(trend, |f| &f.idle_value, ("Idle license value", "/applications?status=over_licensed&sort=surplus&dir=desc")))
            }
        }
    }
}

/// Agents that stopped reporting or dropped records, by computer.
fn agents(silent: &[AgentTrouble], dropping: &[AgentTrouble]) -> Markup {
    let heard = |a: &AgentTrouble| {
        a.last_heartbeat
            .map(|t| format!("last heard {}", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_else(|| "never heard from".into())
    };
    html! {
        h2 #agents-heading { "Agents" }
        section.tiles #agents aria-labelledby="agents-heading" {
            (tile(&format!("agents silent for over {SILENT_MINUTES} minutes"), silent.len().to_string(), AGENTS_HREF, if silent.is_empty() { "muted" } else { "bad" }))
            (tile("agents that dropped records", dropping.len().to_string(), AGENTS_HREF, if dropping.is_empty() { "muted" } else { "warn" }))
        }
        @if !silent.is_empty() || !dropping.is_empty() {
            ul #agent-trouble {
                @for a in silent { li { (a.host_name) ": " (heard(a)) } }
                @for a in dropping { li { (a.host_name) ": " (a.dropped_records) " records dropped from a full spool" } }
            }
        }
    }
}

/// A figure: what it counts, the number, and the page it links to.
fn tile(label: &str, value: String, href: &str, class: &str) -> Markup {
    html! {
        a.tile.(class) href=(href) {
            span.figure { (value) }
            span.label { (label) }
        }
    }
}

pub async fn page(State(state): State<WebState>, signed: Signed) -> Result<Html<String>, WebError> {
    let store = state.service.store();
    let today = Utc::now().date_naive();
    let positions = state.service.positions(today, None).await?;
    let idle = state
        .service
        .reclaim_shared(&ReclaimQuery::days(today, IDLE_DAYS))
        .await?;
    let expiring = licensing::expiring(store, today, EXPIRING_DAYS).await?;
    let count = |s: Status| positions.iter().filter(|p| p.status == s).count();
    let shortfall = per_currency(positions.iter().filter_map(|p| p.shortfall_cost.as_ref()));
    let surplus = per_currency(positions.iter().flat_map(|p| &p.surplus_value));
    let freed = &idle.idle_value;
    let trend = position_trend(store, today, &positions, (TREND_DAYS, TREND_STEP)).await?;
    let silent_since = Utc::now() - chrono::Duration::minutes(SILENT_MINUTES);
    let (silent, dropping) = agent_trouble(store, silent_since).await?;
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
                monies(freed), &format!("/reclaim?days={IDLE_DAYS}"), "muted"))
            (tile(&format!("license and maintenance ends in the next {EXPIRING_DAYS} days"),
                expiring.len().to_string(), &format!("/licenses?expiring={EXPIRING_DAYS}"), "muted"))
        }
        @if !expiring.is_empty() {
            h2 { "Ending soon" }
            table #expiring {
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
        (trend_charts(&trend))
        (agents(&silent, &dropping))
    };
    Ok(layout::page(&signed, "/", "Dashboard", body))
}
