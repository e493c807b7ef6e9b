//! People's rights over HTTP: forgetting one person, resolving one pseudonym. Admin only;
//! both are audit-logged by the service.

use axum::extract::State;
use axum::Json;
use tally_api::{ForgetUser, ForgottenUser, ResolvePseudonym, ResolvedPseudonym};
use tally_service::users;

use crate::auth::Operator;
use crate::error::ErrorBody;
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

#[utoipa::path(post, path = "/api/v1/users/forget", tag = "inventory", security(("bearer" = [])),
    request_body = ForgetUser,
    responses((status = 200, description = "The user made anonymous; its usage kept", body = ForgottenUser),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn forget(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<ForgetUser>,
) -> Result<Json<ForgottenUser>, ApiError> {
    op.require_admin()?;
    let forgotten = users::forget(&state.service, op.name(), &req.account).await?;
    Ok(Json(ForgottenUser {
        user_id: forgotten.user_id,
        local_accounts: forgotten.local_accounts,
    }))
}

#[utoipa::path(post, path = "/api/v1/users/resolve", tag = "inventory", security(("bearer" = [])),
    request_body = ResolvePseudonym,
    responses((status = 200, body = ResolvedPseudonym), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn resolve(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<ResolvePseudonym>,
) -> Result<Json<ResolvedPseudonym>, ApiError> {
    op.require_admin()?;
    let account = users::resolve(&state.service, op.name(), &req.pseudonym).await?;
    Ok(Json(ResolvedPseudonym {
        pseudonym: req.pseudonym,
        account,
    }))
}
