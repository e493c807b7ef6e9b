//! License certificates over HTTP: trusted issuers, certificates imported (verified by the
//! service, which refuses a malformed file, an unknown issuer, a bad signature or a duplicate
//! key and then stores nothing) and listed with the seed's columns.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use tally_api::{CertificateView, ImportCertificates, TextFile};
use tally_core::certificates::Issuer;
use tally_service::certificates;

use crate::auth::Operator;
use crate::error::ErrorBody;
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

#[utoipa::path(get, path = "/api/v1/certificates", tag = "licensing", security(("bearer" = [])),
    responses((status = 200, description = "Every stored certificate (customer, product, count, created, expires, key), whether it has expired, and the license it backs", body = [CertificateView]),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<CertificateView>>, ApiError> {
    let today = Utc::now().date_naive();
    Ok(Json(certificates::list(state.store.as_ref(), today).await?))
}

#[utoipa::path(post, path = "/api/v1/certificates", tag = "licensing", security(("bearer" = [])),
    request_body = ImportCertificates,
    responses((status = 201, description = "Verified and stored, each with the license it registered or updated; every certificate now stored", body = [CertificateView]),
        (status = 400, description = "A malformed file, an unknown issuer or a bad signature: FILE:LINE: field: reason; nothing stored", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "A certificate with that key is stored already; nothing stored", body = ErrorBody)))]
pub(crate) async fn import(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ImportCertificates>,
) -> Result<(StatusCode, Json<Vec<CertificateView>>), ApiError> {
    op.require_admin()?;
    let stored = certificates::import(&state.service, op.name(), &body.files, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

#[utoipa::path(get, path = "/api/v1/certificates/issuers", tag = "licensing", security(("bearer" = [])),
    responses((status = 200, description = "Trusted issuers and their public keys", body = [Issuer]),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn issuers(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<Issuer>>, ApiError> {
    Ok(Json(state.store.issuers().await?))
}

#[utoipa::path(post, path = "/api/v1/certificates/issuers", tag = "licensing", security(("bearer" = [])),
    request_body = TextFile,
    responses((status = 201, description = "The issuer's public key is trusted", body = Issuer),
        (status = 400, description = "Not an issuer public key file: FILE:LINE: field: reason", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "That issuer or key is trusted already", body = ErrorBody)))]
pub(crate) async fn trust(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(file): JsonBody<TextFile>,
) -> Result<(StatusCode, Json<Issuer>), ApiError> {
    op.require_admin()?;
    let issuer = certificates::trust(&state.service, op.name(), &file).await?;
    Ok((StatusCode::CREATED, Json(issuer)))
}
