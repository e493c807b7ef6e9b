//! Identity changes over HTTP (admin only, audit-logged by the service): a device's status,
//! merging two devices of one machine, and an administrator's classification of an account.

use axum::extract::State;
use axum::Json;
use tally_api::{MergeDevices, SetDeviceStatus, SetServiceAccount};
use tally_core::device::MergedDevices;
use tally_core::{Device, User};
use tally_service::{devices, users};

use crate::auth::Operator;
use crate::error::ErrorBody;
use crate::extract::{JsonBody, Path};
use crate::{ApiError, AppState};

#[utoipa::path(put, path = "/api/v1/devices/{id}/status", tag = "inventory", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Device id")), request_body = SetDeviceStatus,
    responses((status = 200, description = "The device with its new status", body = Device),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn set_device_status(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<SetDeviceStatus>,
) -> Result<Json<Device>, ApiError> {
    op.require_admin()?;
    let device = devices::set_status(&state.service, op.name(), id, req.status).await?;
    Ok(Json(device))
}

#[utoipa::path(post, path = "/api/v1/devices/{id}/merge", tag = "inventory", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The device merged away")), request_body = MergeDevices,
    responses((status = 200, description = "What moved to the device merged into; the other is gone", body = MergedDevices),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn merge_devices(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<MergeDevices>,
) -> Result<Json<MergedDevices>, ApiError> {
    op.require_admin()?;
    let merged = devices::merge(&state.service, op.name(), id, req.into).await?;
    Ok(Json(merged))
}

#[utoipa::path(post, path = "/api/v1/users/service-account", tag = "inventory", security(("bearer" = [])),
    request_body = SetServiceAccount,
    responses((status = 200, description = "The user with its classification", body = User),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn set_service_account(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(req): JsonBody<SetServiceAccount>,
) -> Result<Json<User>, ApiError> {
    op.require_admin()?;
    let user =
        users::set_service_account(&state.service, op.name(), &req.account, req.service_account)
            .await?;
    Ok(Json(user))
}
