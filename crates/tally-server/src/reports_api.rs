//! Reports over HTTP: the catalogue, and any report in any format, built by the service.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use tally_report::{Format, ReportError, ReportInfo};

use crate::auth::Operator;
use crate::error::ErrorBody;
use crate::extract::{Path as UrlPath, Query};
use crate::{ApiError, AppState};

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        tally_service::ServiceError::from(e).into()
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
    let built = tally_service::reports::make(&state.service, &name, &params, Utc::now()).await?;
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
