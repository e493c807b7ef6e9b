//! Applications, licenses and the compliance position over HTTP (read side; loading is
//! `tally import`).

use axum::extract::{Query, State};
use axum::Json;
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use tally_core::License;
use tally_store::{AppRecord, Snapshot};
use utoipa::IntoParams;

use crate::auth::Operator;
use crate::compliance::AppPosition;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};

#[utoipa::path(get, path = "/api/v1/applications", tag = "licensing", security(("bearer" = [])),
    responses((status = 200, body = Vec<AppRecord>), (status = 401, body = ErrorBody)))]
pub(crate) async fn applications(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<AppRecord>>, ApiError> {
    Ok(Json(state.store.applications().await?))
}

#[utoipa::path(get, path = "/api/v1/licenses", tag = "licensing", security(("bearer" = [])),
    responses((status = 200, body = Vec<License>), (status = 401, body = ErrorBody)))]
pub(crate) async fn licenses(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<License>>, ApiError> {
    Ok(Json(state.store.licenses().await?))
}

/// Which position to compute.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ComplianceParams {
    /// Only this application (by name).
    app: Option<String>,
    /// The position as it stood on this day (YYYY-MM-DD): metering periods end there and only
    /// licenses valid then count. Default today.
    as_of: Option<NaiveDate>,
}

#[utoipa::path(get, path = "/api/v1/compliance", tag = "licensing", security(("bearer" = [])),
    params(ComplianceParams),
    responses((status = 200, description = "Each application's position", body = Vec<AppPosition>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn compliance(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<ComplianceParams>,
) -> Result<Json<Vec<AppPosition>>, ApiError> {
    let as_of = p.as_of.unwrap_or_else(|| Utc::now().date_naive());
    let positions =
        crate::compliance::compute(state.store.as_ref(), as_of, p.app.as_deref()).await?;
    Ok(Json(positions))
}

/// Which snapshots to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SnapshotParams {
    /// Only this application (by name).
    app: Option<String>,
    /// First day (YYYY-MM-DD); default 90 days ago.
    from: Option<NaiveDate>,
}

#[utoipa::path(get, path = "/api/v1/compliance/snapshots", tag = "licensing", security(("bearer" = [])),
    params(SnapshotParams),
    responses((status = 200, description = "Daily figures per application, for trends", body = Vec<Snapshot>),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn snapshots(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<SnapshotParams>,
) -> Result<Json<Vec<Snapshot>>, ApiError> {
    let app = match &p.app {
        None => None,
        Some(name) => Some(
            state
                .store
                .applications()
                .await?
                .into_iter()
                .find(|a| a.application.name.eq_ignore_ascii_case(name))
                .map(|a| a.application.id)
                .ok_or_else(|| ApiError::NotFound(format!("no application named {name:?}")))?,
        ),
    };
    let from = p
        .from
        .unwrap_or_else(|| Utc::now().date_naive() - chrono::Duration::days(90));
    Ok(Json(state.store.snapshots(app, from).await?))
}

/// Which installations to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReclaimParams {
    /// Unused for at least this many days (default 90).
    days: Option<i64>,
    /// As it stood on this day (YYYY-MM-DD); default today.
    as_of: Option<NaiveDate>,
}

#[utoipa::path(get, path = "/api/v1/reclaim", tag = "licensing", security(("bearer" = [])),
    params(ReclaimParams),
    responses((status = 200, description = "Installations not used for the given days, most costly first", body = Vec<crate::compliance::Reclaimable>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn reclaim(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<ReclaimParams>,
) -> Result<Json<Vec<crate::compliance::Reclaimable>>, ApiError> {
    let days = p.days.unwrap_or(90);
    if !(1..=3650).contains(&days) {
        return Err(ApiError::BadRequest("days: between 1 and 3650".into()));
    }
    let as_of = p.as_of.unwrap_or_else(|| Utc::now().date_naive());
    Ok(Json(
        crate::compliance::reclaim(state.store.as_ref(), as_of, days).await?,
    ))
}
