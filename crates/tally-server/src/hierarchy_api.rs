//! The site hierarchy over HTTP: operators invite, list and revoke child sites; a child joins
//! once with its secret, then syncs with its site credential (`Bearer CODE.CREDENTIAL`), the
//! way agents authenticate: per site, revocable, over the same TLS.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::Utc;
use tally_api::{InviteSite, SiteInvited, SiteRow};
use tally_core::hierarchy::{JoinRequest, Joined, SiteLink, SyncDown, SyncUp};
use tally_core::SiteCode;
use tally_service::hierarchy;

use crate::auth::{id_and_secret, Operator};
use crate::error::ErrorBody;
use crate::extract::{JsonBody, Path};
use crate::rate_limit::Caller;
use crate::{ApiError, AppState};

/// The hierarchy's routes, merged into the server's router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sites/tree", get(tree))
        .route("/api/v1/sites/invites", post(invite))
        .route("/api/v1/sites/{code}/link", delete(revoke))
        .route("/api/v1/site-sync/join", post(join))
        .route("/api/v1/site-sync", post(sync))
}

/// A child site, authenticated by its credential.
pub struct SiteAuth(pub SiteLink);

impl FromRequestParts<AppState> for SiteAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |why: &str| {
            ApiError::Unauthorized(format!(
                "{why}; invite the site again on its parent (tally sites invite) and join with the new secret"
            ))
        };
        let (code, secret) =
            id_and_secret(&parts.headers, "site").map_err(|why| unauthorized(&why))?;
        let code = SiteCode::parse(code).map_err(|_| unauthorized("malformed site code"))?;
        let link = hierarchy::authenticate(&state.service, &code, secret)
            .await?
            .ok_or_else(|| unauthorized("unknown, revoked or wrong site credential"))?;
        state
            .rate_limits
            .check(Caller::Agent(&format!("site:{code}")))?;
        Ok(SiteAuth(link))
    }
}

#[utoipa::path(get, path = "/api/v1/sites/tree", tag = "sites", security(("bearer" = [])),
    responses((status = 200, description = "This site and every site below it, depth first, with last sync, lag, backlog, devices and records", body = [SiteRow]),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn tree(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<SiteRow>>, ApiError> {
    Ok(Json(hierarchy::tree(&state.service, Utc::now()).await?))
}

#[utoipa::path(post, path = "/api/v1/sites/invites", tag = "sites", security(("bearer" = [])),
    request_body = InviteSite,
    responses((status = 200, description = "The one-time join secret, shown once; only its hash is kept", body = SiteInvited),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The code is this site, outside its subtree, or joined already", body = ErrorBody)))]
pub(crate) async fn invite(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<InviteSite>,
) -> Result<Json<SiteInvited>, ApiError> {
    op.require_admin()?;
    Ok(Json(
        hierarchy::invite(&state.service, op.name(), &body).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/sites/{code}/link", tag = "sites", security(("bearer" = [])),
    params(("code" = String, Path, description = "The child site's code")),
    responses((status = 204, description = "Revoked: the child's syncs are refused from now on"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No live link of that site", body = ErrorBody)))]
pub(crate) async fn revoke(
    op: Operator,
    State(state): State<AppState>,
    Path(code): Path<SiteCode>,
) -> Result<axum::http::StatusCode, ApiError> {
    op.require_admin()?;
    hierarchy::revoke(&state.service, op.name(), &code).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/site-sync/join", tag = "sites", request_body = JoinRequest,
    responses((status = 200, description = "Joined: the site credential, shown once", body = Joined),
        (status = 400, body = ErrorBody),
        (status = 401, description = "No live invitation of that code with that secret", body = ErrorBody)))]
pub(crate) async fn join(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<JoinRequest>,
) -> Result<Json<Joined>, ApiError> {
    hierarchy::join(&state.service, &body)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::Unauthorized(format!(
                "no live invitation of site {} with this secret: it is wrong, used, expired or revoked; \
                 make a new one on the parent (tally sites invite --code {})",
                body.site_code, body.site_code
            ))
        })
}

#[utoipa::path(post, path = "/api/v1/site-sync", tag = "sites", security(("site" = [])),
    request_body(content = SyncUp, content_type = "application/json", description = "A batch, gzip-compressed (Content-Encoding: gzip)"),
    responses((status = 200, description = "Stored (once, however often it is sent); the rules that reach down to the child", body = SyncDown),
        (status = 400, description = "Not gzip, malformed, over a limit, or data outside the child's subtree", body = ErrorBody),
        (status = 401, description = "Unknown, revoked or wrong site credential", body = ErrorBody)))]
pub(crate) async fn sync(
    SiteAuth(child): SiteAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<SyncDown>, ApiError> {
    let gzip = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let up: SyncUp = if gzip {
        hierarchy::inflate(&body)?
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("the batch: {e}")))?
    };
    Ok(Json(
        hierarchy::receive(&state.service, &child.code, up).await?,
    ))
}
