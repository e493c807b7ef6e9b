//! The organisation tree over HTTP: its nodes, the rules that place devices and users on them,
//! and placing one device or user by hand.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use tally_api::Placement;
use tally_core::org::{OrgRule, OrgRuleSpec};
use tally_core::OrgNode;
use tally_store::OrgTarget;

use crate::admin_api::audit;
use crate::auth::Operator;
use crate::error::{ErrorBody, JsonBody};
use crate::{ApiError, AppState};

#[utoipa::path(get, path = "/api/v1/org-nodes", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = Vec<OrgNode>), (status = 401, body = ErrorBody)))]
pub(crate) async fn nodes(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<OrgNode>>, ApiError> {
    Ok(Json(state.store.org_nodes().await?))
}

/// The id of the node called `name`, or a 400 that says where to look.
async fn node_id(state: &AppState, name: &str) -> Result<i64, ApiError> {
    state
        .store
        .org_nodes()
        .await?
        .into_iter()
        .find(|n| n.name == name)
        .map(|n| n.id)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "org_node: no org node named {name:?}; see tally org nodes (nodes are loaded with tally import)"
            ))
        })
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
    spec.validate()?;
    let text = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let rule = OrgRule {
        id: 0,
        org_node: node_id(&state, &spec.org_node).await?,
        site: text(&spec.site),
        host_name: text(&spec.host_name),
        account: text(&spec.account),
    };
    let rule = state.store.add_org_rule(&rule).await?;
    audit(
        &state,
        &op,
        "org_rule.add",
        format!("org_rule:{}", rule.id),
        &spec,
    )
    .await?;
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
    if !state.store.delete_org_rule(id).await? {
        return Err(ApiError::NotFound(format!(
            "no org rule {id}; see tally org rules"
        )));
    }
    audit(&state, &op, "org_rule.delete", format!("org_rule:{id}"), ()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn place(
    op: Operator,
    state: AppState,
    target: OrgTarget,
    placement: Placement,
) -> Result<StatusCode, ApiError> {
    op.require_admin()?;
    let node = match &placement.org_node {
        Some(name) => Some(node_id(&state, name).await?),
        None => None,
    };
    let (what, id) = match target {
        OrgTarget::Device(id) => ("device", id),
        OrgTarget::User(id) => ("user", id),
    };
    if !state.store.set_org_node(target, node).await? {
        return Err(ApiError::NotFound(format!(
            "no {what} {id}; see tally {what}s"
        )));
    }
    audit(
        &state,
        &op,
        &format!("{what}.place"),
        format!("{what}:{id}"),
        &placement,
    )
    .await?;
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
