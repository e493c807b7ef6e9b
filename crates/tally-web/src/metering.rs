//! Administration, continued: the system-metering report of seed 003 — the installation's
//! own figures as the report gives them (its license certificates, the devices and users that
//! need licenses, the operators with write access), and the report written on demand, through
//! `tally_service::metering` like `tally report system-metering` and the API.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{NaiveDate, Utc};
use maud::html;
use serde::Deserialize;
use tally_service::metering;

use crate::admin::{admin_page, button_form};
use crate::reports::report_table;
use crate::session::{CsrfOnly, Signed};
use crate::{WebError, WebState};

/// `?written=YYYY-MM-DD`: the day whose report files the page lists, after a run.
#[derive(Deserialize)]
pub struct Written {
    #[serde(default)]
    written: String,
}

/// `/admin/metering`: the figures as they stand now, and the files of a run just made.
pub async fn page(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<Written>,
) -> Result<Response, WebError> {
    let sections = metering::sections_now(&state.service, Utc::now()).await?;
    let written = written_files(&state, &q.written)?;
    let body = html! {
        p { "What this installation measures of itself (seed 003): its license certificates, the devices in relevant statuses, the natural persons and the operators with write access. The figures are an assessment aid, not a license count; the report holds no names." }
        @if let Some((folder, files)) = &written {
            p #written { "Written to " (folder) ": " (files.join(", ")) "." }
        }
        @if signed.is_admin() {
            p { (button_form(&signed, "/admin/metering/run", "Write the report now", None))
                " The DAT signed by the site key, HTML and PDF, under the metering folder; sent when an upload URL is set." }
        }
        @for (i, section) in sections.iter().enumerate() {
            h2 { (section.title) }
            (report_table(section, &format!("metering-{i}")))
        }
    };
    Ok(admin_page(
        &signed,
        "/admin/metering",
        "System metering",
        body,
    ))
}

/// Writes the report now (admins only), then shows its files.
pub async fn run(
    State(state): State<WebState>,
    signed: Signed,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let now = Utc::now();
    metering::run_now(&state.service, now).await?;
    let to = format!("/admin/metering?written={}", now.date_naive());
    Ok(Redirect::to(&to).into_response())
}

/// The report folder of `day` and the files in it, when asked for and there.
fn written_files(state: &WebState, day: &str) -> Result<Option<(String, Vec<String>)>, WebError> {
    if day.is_empty() {
        return Ok(None);
    }
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| WebError::BadRequest("written: a day as YYYY-MM-DD".into()))?;
    let Some(dir) = &state.service.metering().dir else {
        return Ok(None);
    };
    let folder = dir.join("reports").join(day.to_string());
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Ok(None);
    };
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    files.sort();
    Ok(Some((folder.display().to_string(), files)))
}
