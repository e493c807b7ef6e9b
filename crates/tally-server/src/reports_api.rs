//! Reports over HTTP (the catalogue, and any report in any format) and the scheduled reports
//! the `write_reports` task leaves in `reports/<date>/` under the data directory.

use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use tally_report::{Format, ReportError, ReportInfo, ScheduledReport};

use crate::auth::Operator;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// Where scheduled reports go and which are written.
#[derive(Debug, Clone, Default)]
pub struct ReportOutput {
    /// `reports/` under the data directory; `None` writes nothing.
    pub dir: Option<PathBuf>,
    pub scheduled: Vec<ScheduledReport>,
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::UnknownReport { .. } => ApiError::NotFound(e.to_string()),
            ReportError::Store(e) => ApiError::Store(e),
            e if e.is_caller_error() => ApiError::BadRequest(e.to_string()),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/reports", tag = "reports", security(("bearer" = [])),
    responses((status = 200, description = "The report catalogue", body = Vec<ReportInfo>),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn catalogue(_op: Operator) -> Json<Vec<ReportInfo>> {
    Json(tally_report::CATALOGUE.iter().map(Into::into).collect())
}

#[utoipa::path(get, path = "/api/v1/reports/{name}", tag = "reports", security(("bearer" = [])),
    params(("name" = String, Path, description = "A report from the catalogue"),
        ("format" = Option<String>, Query, description = "pdf, html, csv or json (default)")),
    responses(
        (status = 200, description = "The report in the format asked for; other query parameters are the report's own (see the catalogue)"),
        (status = 400, description = "Unknown parameter or format, malformed value", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such report", body = ErrorBody)))]
pub(crate) async fn report(
    _op: Operator,
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut format = Format::Json;
    let mut params = Vec::new();
    for (k, v) in query {
        match k.as_str() {
            "format" => format = v.parse()?,
            _ => params.push((k, v)),
        }
    }
    let built = tally_report::make(
        state.store.as_ref(),
        &state.site,
        &name,
        &params,
        Utc::now(),
    )
    .await?;
    let body = tally_report::render(&built, format)?;
    let file = format!("{name}.{}", format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Writes each scheduled report, in its default parameters, to `reports/<date>/` (replacing
/// that day's file), then deletes dated folders older than `keep_days`. Returns files written.
pub async fn write_scheduled(
    state: &AppState,
    now: DateTime<Utc>,
    keep_days: i32,
) -> Result<i64, ApiError> {
    let Some(root) = &state.reports.dir else {
        return Err(ApiError::BadRequest(
            "this server has no data directory to write reports to".into(),
        ));
    };
    let day_dir = root.join(now.date_naive().to_string());
    std::fs::create_dir_all(&day_dir).map_err(|e| io_error(&day_dir, e))?;
    let mut written = 0;
    for scheduled in &state.reports.scheduled {
        let built =
            tally_report::make(state.store.as_ref(), &state.site, scheduled.name, &[], now).await?;
        let bytes = tally_report::render(&built, scheduled.format)?;
        write_atomically(&day_dir.join(scheduled.file_name()), &bytes)?;
        written += 1;
    }
    delete_old_days(
        root,
        now.date_naive() - chrono::Duration::days(i64::from(keep_days)),
    )?;
    Ok(written)
}

/// Readers of the folder never see half a report: it is written aside, then renamed.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ApiError> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).map_err(|e| io_error(&partial, e))?;
    std::fs::rename(&partial, path).map_err(|e| io_error(path, e))
}

/// Removes `YYYY-MM-DD` folders dated before `before`; anything else there is left alone.
fn delete_old_days(root: &Path, before: NaiveDate) -> Result<(), ApiError> {
    let entries = std::fs::read_dir(root).map_err(|e| io_error(root, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let dated = name
            .to_str()
            .and_then(|n| NaiveDate::parse_from_str(n, "%Y-%m-%d").ok());
        if dated.is_some_and(|d| d < before) {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(|e| io_error(&path, e))?;
            tracing::info!(folder = %path.display(), "deleted aged reports");
        }
    }
    Ok(())
}

fn io_error(path: &Path, e: std::io::Error) -> ApiError {
    ApiError::Internal(format!(
        "cannot write reports at {}: {e}; check the data directory's permissions and free space",
        path.display()
    ))
}
