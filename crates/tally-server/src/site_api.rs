//! This site over HTTP: its alias and public key, each device status's relevance for the
//! system-metering report, and the report run on demand.

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use tally_api::{MeteringRun, SetAlias, SiteView};
use tally_core::system_metering::StatusRelevance;
use tally_service::{metering, site};

use crate::auth::Operator;
use crate::error::ErrorBody;
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

#[utoipa::path(get, path = "/api/v1/site", tag = "site", security(("bearer" = [])),
    responses((status = 200, description = "This site: code, name, the alias that heads every report and where it comes from, the public key its signed reports verify with", body = SiteView),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn show(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<SiteView>, ApiError> {
    Ok(Json(site::view(&state.service).await?))
}

#[utoipa::path(put, path = "/api/v1/site/alias", tag = "site", security(("bearer" = [])),
    request_body = SetAlias,
    responses((status = 200, description = "The alias is set (empty: removed); serveralias.txt still wins when present", body = SiteView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "This site is not registered", body = ErrorBody)))]
pub(crate) async fn set_alias(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SetAlias>,
) -> Result<Json<SiteView>, ApiError> {
    op.require_admin()?;
    Ok(Json(
        site::set_alias(&state.service, op.name(), &body.alias).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/site/relevance", tag = "site", security(("bearer" = [])),
    responses((status = 200, description = "Each device status's four criteria (seed 003); a status is relevant when any applies", body = [StatusRelevance]),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn relevance(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<StatusRelevance>>, ApiError> {
    Ok(Json(state.store.status_relevance().await?))
}

#[utoipa::path(put, path = "/api/v1/site/relevance", tag = "site", security(("bearer" = [])),
    request_body = StatusRelevance,
    responses((status = 200, description = "Set; every status's criteria", body = [StatusRelevance]),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn set_relevance(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<StatusRelevance>,
) -> Result<Json<Vec<StatusRelevance>>, ApiError> {
    op.require_admin()?;
    Ok(Json(
        metering::set_relevance(&state.service, op.name(), &body).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/system-metering", tag = "site", security(("bearer" = [])),
    responses((status = 200, description = "The report written (DAT signed, HTML, PDF) under metering/reports/<date>/, sent when an upload URL is set, and its figures fed back into the license models", body = MeteringRun),
        (status = 400, description = "This server has no data directory or site key", body = ErrorBody),
        (status = 409, description = "The report is being written already", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn run(
    op: Operator,
    State(state): State<AppState>,
) -> Result<Json<MeteringRun>, ApiError> {
    op.require_admin()?;
    Ok(Json(metering::run_now(&state.service, Utc::now()).await?))
}
