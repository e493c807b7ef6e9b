//! The organisation tree over HTTP: its nodes, the rules that place devices and users on them,
//! and placing one device or user by hand.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use tally_api::{OrgNodeView, Placement};
use tally_core::org::{OrgRule, OrgRuleSpec};
use tally_service::org;
use tally_store::OrgTarget;

use crate::auth::Operator;
use crate::error::ErrorBody;
use crate::extract::{JsonBody, Path};
use crate::{ApiError, AppState};

#[utoipa::path(get, path = "/api/v1/org-nodes", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, description = "Every node with its parent's name", body = Vec<OrgNodeView>),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn nodes(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<OrgNodeView>>, ApiError> {
    Ok(Json(org::nodes(state.store.as_ref()).await?))
}

#[utoipa::path(get, path = "/api/v1/org-rules", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, description = "Oldest first, the order they are tried in", body = Vec<OrgRule>),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn rules(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<OrgRule>>, ApiError> {
    Ok(Json(state.store.org_rules().await?))
}

#[utoipa::path(post, path = "/api/v1/org-rules", tag = "organisation", security(("bearer" = [])),
    request_body = OrgRuleSpec,
    responses((status = 201, body = OrgRule), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn add_rule(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(spec): JsonBody<OrgRuleSpec>,
) -> Result<(StatusCode, Json<OrgRule>), ApiError> {
    op.require_admin()?;
    let rule = org::add_rule(&state.service, op.name(), &spec).await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

#[utoipa::path(delete, path = "/api/v1/org-rules/{id}", tag = "organisation", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_rule(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    op.require_admin()?;
    org::delete_rule(&state.service, op.name(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn place(
    op: Operator,
    state: AppState,
    target: OrgTarget,
    placement: Placement,
) -> Result<StatusCode, ApiError> {
    op.require_admin()?;
    org::place(&state.service, op.name(), target, &placement).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/devices/{id}/org-node", tag = "organisation", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = Placement,
    responses((status = 204, description = "Placed"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn place_device(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(placement): JsonBody<Placement>,
) -> Result<StatusCode, ApiError> {
    place(op, state, OrgTarget::Device(id), placement).await
}

#[utoipa::path(put, path = "/api/v1/users/{id}/org-node", tag = "organisation", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = Placement,
    responses((status = 204, description = "Placed"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn place_user(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(placement): JsonBody<Placement>,
) -> Result<StatusCode, ApiError> {
    place(op, state, OrgTarget::User(id), placement).await
}
