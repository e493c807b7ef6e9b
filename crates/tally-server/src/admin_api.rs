//! The admin API: operator and enrolment tokens, agents, metering rules, and the audit log.
//! Reads need any operator token; changes need the admin role and are written to the audit log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tally_api::{AuditRow, CreateEnrollmentToken, CreateToken, CreatedToken};
use tally_core::agents::{Agent, EnrollmentToken};
use tally_core::autorules::AutoRuleSettings;
use tally_core::rules::RuleSpec;
use tally_core::{MeteringRule, OperatorToken};
use tally_service::{operators, rules};
use utoipa::IntoParams;

use crate::auth::{generate_token, Operator};
use crate::error::ErrorBody;
use crate::extract::{JsonBody, Path, Query};
use crate::{ApiError, AppState};

#[utoipa::path(get, path = "/api/v1/tokens", tag = "operators", security(("bearer" = [])),
    responses((status = 200, body = Vec<OperatorToken>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_tokens(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<OperatorToken>>, ApiError> {
    Ok(Json(state.store.operator_tokens().await?))
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "operators", security(("bearer" = [])),
    request_body = CreateToken,
    responses(
        (status = 201, description = "Created; the token is shown only now", body = CreatedToken<OperatorToken>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(crate) async fn create_token(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken<OperatorToken>>), ApiError> {
    op.require_admin()?;
    let (token, hash) = generate_token();
    let info = operators::create_token(&state.service, op.name(), &req, &hash).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { info, token })))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "operators", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_token(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    op.require_admin()?;
    operators::revoke_token(&state.service, op.name(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/enrollment-tokens", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = Vec<EnrollmentToken>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_enrollment_tokens(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<EnrollmentToken>>, ApiError> {
    Ok(Json(state.store.enrollment_tokens().await?))
}

#[utoipa::path(post, path = "/api/v1/enrollment-tokens", tag = "agents", security(("bearer" = [])),
    request_body = CreateEnrollmentToken,
    responses(
        (status = 201, description = "Created; the token is shown only now", body = CreatedToken<EnrollmentToken>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(crate) async fn create_enrollment_token(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<CreateEnrollmentToken>,
) -> Result<(StatusCode, Json<CreatedToken<EnrollmentToken>>), ApiError> {
    op.require_admin()?;
    let (token, hash) = generate_token();
    let info = operators::create_enrollment_token(&state.service, op.name(), req, &hash).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { info, token })))
}

#[utoipa::path(delete, path = "/api/v1/enrollment-tokens/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_enrollment_token(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    op.require_admin()?;
    operators::revoke_enrollment_token(&state.service, op.name(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = Vec<Agent>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_agents(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<Agent>>, ApiError> {
    Ok(Json(state.store.agents().await?))
}

#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "agents", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "Revoked: its next call gets 401"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_agent(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    op.require_admin()?;
    operators::revoke_agent(&state.service, op.name(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", security(("bearer" = [])),
    responses((status = 200, body = Vec<MeteringRule>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_rules(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<MeteringRule>>, ApiError> {
    Ok(Json(state.store.rules().await?))
}

#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "rules", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = MeteringRule), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_rule(
    _op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<MeteringRule>, ApiError> {
    state
        .store
        .rule(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no rule {id}; see tally rules list")))
}

#[utoipa::path(post, path = "/api/v1/rules", tag = "rules", security(("bearer" = [])),
    request_body = RuleSpec,
    responses((status = 201, body = MeteringRule), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "Another rule of the site has the name (any case)", body = ErrorBody)))]
pub(crate) async fn create_rule(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(spec): JsonBody<RuleSpec>,
) -> Result<(StatusCode, Json<MeteringRule>), ApiError> {
    op.require_admin()?;
    let rule = rules::create(&state.service, op.name(), &spec).await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

#[utoipa::path(put, path = "/api/v1/rules/{id}", tag = "rules", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = RuleSpec,
    responses((status = 200, body = MeteringRule), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Another rule of the site has the name (any case)", body = ErrorBody)))]
pub(crate) async fn update_rule(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(spec): JsonBody<RuleSpec>,
) -> Result<Json<MeteringRule>, ApiError> {
    op.require_admin()?;
    let rule = rules::update(&state.service, op.name(), id, &spec).await?;
    Ok(Json(rule))
}

#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "rules", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_rule(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    op.require_admin()?;
    rules::delete(&state.service, op.name(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Paging for lists: ids greater than `after`, at most `limit` (1 to 1000, default 100).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// Only rows whose id is greater than this (the last id of the previous page).
    #[serde(default)]
    #[param(default = 0)]
    after: i64,
    /// At most this many rows.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<i64>,
}

impl PageParams {
    pub fn new(after: i64, limit: Option<i64>) -> Self {
        Self { after, limit }
    }

    pub fn page(&self) -> Result<tally_store::Page, ApiError> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit: {limit} is not between 1 and 1000"
            )));
        }
        Ok(tally_store::Page {
            after: self.after,
            limit,
        })
    }
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "operators", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = Vec<AuditRow>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn audit_log(
    _op: Operator,
    State(state): State<AppState>,
    Query(params): Query<PageParams>,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    let rows = state.store.audit_log(params.page()?).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(id, entry)| AuditRow { id, entry })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/rules/auto", tag = "rules", security(("bearer" = [])),
    request_body = AutoRuleSettings,
    responses(
        (status = 200, description = "The automatic rules created now (disabled)", body = Vec<MeteringRule>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub(crate) async fn auto_rules(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(settings): JsonBody<AutoRuleSettings>,
) -> Result<Json<Vec<MeteringRule>>, ApiError> {
    op.require_admin()?;
    let created = tally_service::autorules::generate(&state.service, settings, op.name()).await?;
    Ok(Json(created))
}
