//! An application's page, continued: its use over time (a chart of hours by month, drawn by
//! the reports' `tally_report::chart_svg`) and the recognition rules that say what counts as
//! it, both as of the page's day.

use chrono::NaiveDate;
use maud::{html, Markup, PreEscaped};
use tally_core::licenses::AppRecord;
use tally_core::SiteCode;
use tally_report::Chart;
use tally_service::app_usage::{by_month, MonthUse, UsageSource};
use tally_service::ServiceError;

use crate::{WebError, WebState};

/// The months the usage chart covers, up to the page's day.
const MONTHS: u32 = 12;

/// `202603` → `2026-03`.
fn month_text(month: i32) -> String {
    format!("{}-{:02}", month / 100, month % 100)
}

/// The usage and recognition sections of application `name`'s page as of `as_of`; the usage
/// on devices of `sites` only, when given (a parent narrowed to a child's subtree).
pub async fn sections(
    state: &WebState,
    name: &str,
    as_of: NaiveDate,
    sites: Option<&[SiteCode]>,
) -> Result<Markup, WebError> {
    let store = state.service.store();
    let apps = store
        .applications_on(as_of)
        .await
        .map_err(ServiceError::from)?;
    let Some(app) = apps
        .into_iter()
        .find(|a| a.application.name.eq_ignore_ascii_case(name))
    else {
        return Ok(html! {});
    };
    let (source, months) = by_month(store, &app, as_of, MONTHS, sites).await?;
    Ok(html! { (usage(source, &months)) (recognition(&app)) })
}

fn usage(source: UsageSource, months: &[MonthUse]) -> Markup {
    let from = match source {
        UsageSource::MeteringRules => {
            "the monthly summaries of the metering rules its recognition names"
        }
        UsageSource::Sessions => {
            "its usage sessions (no metering rule is named in its recognition)"
        }
    };
    let bars = months
        .iter()
        .map(|m| (month_text(m.month), m.usage_ms as f64 / 3_600_000.0))
        .collect();
    let svg = tally_report::chart_svg(&Chart::Bars {
        title: "Hours of use by month".into(),
        unit: "hours".into(),
        bars,
    });
    let runs: i64 = months.iter().map(|m| m.runs).sum();
    html! {
        h2 #usage-heading { "Usage over time" }
        p.hint { "From " (from) "; " (runs) " runs or sessions in the last " (MONTHS) " months." }
        div.chart #usage { (PreEscaped(svg)) }
    }
}

fn recognition(app: &AppRecord) -> Markup {
    let any = |p: &str| {
        if p.is_empty() {
            "any".to_string()
        } else {
            p.to_string()
        }
    };
    html! {
        h2 { "Recognition rules" }
        table #recognition {
            thead { tr { th { "Software" } th { "Publisher" } th { "Version" } th { "Metering rule" } } }
            tbody {
                @for r in &app.recognition {
                    tr { td { (any(&r.software)) } td { (any(&r.publisher)) } td { (any(&r.version)) } td { (if r.metering_rule.is_empty() { "—" } else { &r.metering_rule }) } }
                }
                @if app.recognition.is_empty() { tr { td colspan="4" { "No recognition rule: nothing installed counts as this application." } } }
            }
        }
    }
}
