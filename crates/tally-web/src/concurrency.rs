//! An application's concurrency chart: the peak of users (or devices) using it in one clock
//! hour, per day (the 31 days up to the page's day) or per month (the 12 months up to it), from
//! `tally_service::concurrency`, which counts as the compliance engine does for the concurrent
//! metrics. Drawn by the reports' `tally_report::chart_svg`.

use axum::extract::{Path, Query, State};
use axum::response::Html;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;
use tally_core::licenses::Metric;
use tally_report::Chart;
use tally_service::concurrency::{Concurrency, Per};

use crate::admin::when;
use crate::apps::{app_link, day, query};
use crate::forms::MAX_FIELD_CHARS;
use crate::layout::{self, encode, words};
use crate::session::Signed;
use crate::site_scope::SiteScope;
use crate::{WebError, WebState};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConcurrencyQuery {
    as_of: String,
    per: String,
    /// At a parent: only the use on devices of this site's subtree.
    site: String,
}

fn per(text: &str) -> Result<Per, WebError> {
    match text {
        "" | "day" => Ok(Per::Day),
        "month" => Ok(Per::Month),
        _ => Err(WebError::BadRequest("per: day or month".into())),
    }
}

/// The URL of application `name`'s concurrency chart, up to `as_of` per `per` (empty: the
/// defaults) over the subtree of `site` (empty: the whole subtree).
pub fn href(name: &str, (as_of, per): (&str, &str), site: &str) -> String {
    let params = [("as_of", as_of), ("per", per), ("site", site)];
    format!(
        "/applications/{}/concurrency{}",
        encode(name),
        query(&params)
    )
}

pub async fn page(
    State(state): State<WebState>,
    signed: Signed,
    Path(name): Path<String>,
    Query(q): Query<ConcurrencyQuery>,
) -> Result<Html<String>, WebError> {
    if name.chars().count() > MAX_FIELD_CHARS {
        return Err(WebError::NotFound("no such application".into()));
    }
    let (as_of, per) = (day(&q.as_of)?, per(&q.per)?);
    let scope = SiteScope::read(&state, &q.site).await?;
    let devices = scope.devices(&state).await?;
    let c = (state.service)
        .concurrency(&name, as_of, per, devices.as_ref())
        .await?;
    let (day_text, site) = (as_of.to_string(), scope.code());
    let body = html! {
        p { a href=(app_link(&c.application, &day_text, &site)) { "← " (c.application) " as of " (as_of) } }
        (scope.banner(&href(&c.application, (&q.as_of, &q.per), ""), ""))
        form.filters method="get" action=(href(&c.application, ("", ""), "")) {
            label for="as_of" { "Up to" }
            input #as_of type="date" name="as_of" value=(as_of);
            label for="per" { "Peak per" }
            select #per name="per" {
                option value="day" selected[per == Per::Day] { "day (31 days)" }
                option value="month" selected[per == Per::Month] { "month (12 months)" }
            }
            (scope.control())
            button type="submit" { "Show" }
        }
        (summary(&c))
        div.chart #concurrency-chart { (PreEscaped(chart(&c, per))) }
        (table(&c, per))
    };
    let title = format!("{}: concurrent use", c.application);
    Ok(layout::page(&signed, "/applications", &title, body))
}

fn counted(c: &Concurrency) -> &'static str {
    match c.by_user {
        true => "users",
        false => "devices",
    }
}

fn summary(c: &Concurrency) -> Markup {
    let concurrent = matches!(
        c.metric,
        Metric::ConcurrentUsers | Metric::ConcurrentDevices
    );
    let (from, to) = c.metering;
    let last = (to - chrono::Duration::days(1)).date_naive();
    html! {
        p #concurrency-summary {
            "The most " (counted(c)) " using " (c.application) " in one clock hour of its metering period ("
            (from.date_naive()) " to " (last) "): " strong #metering-peak { (c.metering_peak) } ". "
            @if concurrent { "It is measured in " (words(c.metric.as_str())) ", so this is what its licenses must cover." }
            @else { "It is measured in " (words(c.metric.as_str())) ", so this peak does not decide its position." }
        }
        p.hint { "Counted as the compliance engine counts the concurrent metrics: from its usage sessions, each "
            (if c.by_user { "user" } else { "device" }) " once per clock hour, leaving out retired devices, inactive users and service accounts as of the page's day." }
    }
}

fn chart(c: &Concurrency, per: Per) -> String {
    let period = match per {
        Per::Day => "day",
        Per::Month => "month",
    };
    let bars = c
        .peaks
        .iter()
        .map(|p| (p.label.clone(), p.peak as f64))
        .collect();
    tally_report::chart_svg(&Chart::Bars {
        title: format!("Peak concurrent {} per {period}", counted(c)),
        unit: counted(c).into(),
        bars,
    })
}

fn table(c: &Concurrency, per: Per) -> Markup {
    let period = match per {
        Per::Day => "Day (UTC)",
        Per::Month => "Month (UTC)",
    };
    html! {
        table #concurrency {
            thead { tr { th { (period) } th.num { "Peak " (counted(c)) } th { "First reached" } } }
            tbody { @for p in c.peaks.iter().rev() {
                tr { td { (p.label) } td.num { (p.peak) } td { (when(p.hour)) } }
            } }
        }
    }
}
