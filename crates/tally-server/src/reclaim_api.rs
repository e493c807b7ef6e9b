//! The reclaim campaign over HTTP, as the console runs it: the list with its totals per state,
//! proposing an idle installation, and moving an item one step on. Every change is the
//! service's (`tally_service::reclaim_campaign`), audited under the operator's token name.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use tally_core::limits::{check_name, MAX_NAME};
use tally_core::reclaim::{Campaign, ReclaimItem, ReclaimState};
use tally_service::reclaim_campaign;
use utoipa::ToSchema;

use crate::auth::Operator;
use crate::error::ErrorBody;
use crate::extract::{JsonBody, Path};
use crate::{ApiError, AppState};

/// An installation to propose: the application on a device, idle for `days`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Proposal {
    /// The application's name.
    application: String,
    device_id: i64,
    /// It must be on the reclaim list of installations unused this many days (default 90).
    #[schema(minimum = 1, maximum = 3650)]
    days: Option<i64>,
}

/// The state the caller saw the item in; it moves to the next one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Step {
    from: ReclaimState,
}

#[utoipa::path(get, path = "/api/v1/reclaim/campaign", tag = "licensing", security(("bearer" = [])),
    responses((status = 200, description = "Every installation on the campaign's list (newest proposal first) with who took each step, and per state the count and the cost they tied up when proposed, per currency", body = Campaign),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn campaign(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Campaign>, ApiError> {
    Ok(Json(
        reclaim_campaign::campaign(state.store.as_ref()).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/reclaim/campaign", tag = "licensing", security(("bearer" = [])),
    request_body = Proposal,
    responses((status = 201, description = "Proposed, with the cost it ties up now", body = ReclaimItem),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No application of that name", body = ErrorBody),
        (status = 409, description = "On the list already", body = ErrorBody)))]
pub(crate) async fn propose(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(p): JsonBody<Proposal>,
) -> Result<(StatusCode, Json<ReclaimItem>), ApiError> {
    op.require_admin()?;
    check_name("application", &p.application, MAX_NAME)?;
    let days = p.days.unwrap_or(90);
    if !(1..=3650).contains(&days) || p.device_id < 1 {
        return Err(ApiError::BadRequest(
            "days: between 1 and 3650; device_id: a device's id".into(),
        ));
    }
    let today = Utc::now().date_naive();
    let installation = (p.application.as_str(), p.device_id);
    let item =
        reclaim_campaign::propose(&state.service, op.name(), installation, today, days).await?;
    Ok((StatusCode::CREATED, Json(item)))
}

#[utoipa::path(post, path = "/api/v1/reclaim/campaign/{id}/step", tag = "licensing", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = Step,
    responses((status = 204, description = "Moved on: proposed → confirmed → removed"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such item in that state", body = ErrorBody)))]
pub(crate) async fn step(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(s): JsonBody<Step>,
) -> Result<StatusCode, ApiError> {
    op.require_admin()?;
    reclaim_campaign::advance(&state.service, op.name(), id, s.from).await?;
    Ok(StatusCode::NO_CONTENT)
}
