//! Read-only views of what agents reported: devices, users, files, raw usage records and runs.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use tally_core::file::StoredFile;
use tally_core::runs::Run;
use tally_core::{Device, UsageRecord, User};
use tally_service::devices;
use tally_service::usage_reads::{self, UsageFilter};
use tally_store::{DeviceInventory, Page};
use utoipa::IntoParams;

use crate::admin_api::PageParams;
use crate::auth::Operator;
use crate::error::ErrorBody;
use crate::extract::{Path, Query};
use crate::{ApiError, AppState};

#[utoipa::path(get, path = "/api/v1/devices", tag = "inventory", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = Vec<Device>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn devices(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<PageParams>,
) -> Result<Json<Vec<Device>>, ApiError> {
    Ok(Json(state.store.devices(p.page()?).await?))
}

#[utoipa::path(get, path = "/api/v1/devices/{id}/inventory", tag = "inventory", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Device id")),
    responses((status = 200, body = DeviceInventory), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn device_inventory(
    _op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<DeviceInventory>, ApiError> {
    Ok(Json(devices::inventory(&state.service, id).await?))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "inventory", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = Vec<User>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn users(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<PageParams>,
) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(state.store.users(p.page()?).await?))
}

#[utoipa::path(get, path = "/api/v1/files", tag = "inventory", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = Vec<StoredFile>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn files(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<PageParams>,
) -> Result<Json<Vec<StoredFile>>, ApiError> {
    Ok(Json(state.store.files(p.page()?).await?))
}

/// Filters for usage records and runs.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UsageParams {
    /// Only records of files this rule (by name) meters.
    rule: Option<String>,
    /// Only records ending at or after this date (`YYYY-MM-DD`, UTC) or RFC 3339 time.
    since: Option<String>,
    /// Only this device (its id; `tally usage --device` resolves a host name).
    device_id: Option<i64>,
    /// Only this user (its id; `tally usage --user` resolves an account).
    user_id: Option<i64>,
    /// Only devices of this site and the sites below it (at a parent; default: the whole
    /// subtree this site holds).
    site: Option<String>,
    /// Records: ids greater than this. Runs: the number of runs to skip.
    #[serde(default)]
    #[param(default = 0)]
    after: i64,
    /// At most this many records or runs.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<i64>,
}

fn parse_since(s: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "since: {s:?} is not a date; use YYYY-MM-DD or an RFC 3339 time"
            ))
        })
}

impl UsageParams {
    fn filter(&self) -> Result<UsageFilter, ApiError> {
        Ok(UsageFilter {
            rule: self.rule.clone(),
            since: self.since.as_deref().map(parse_since).transpose()?,
            device_id: self.device_id,
            user_id: self.user_id,
            site: (self.site.as_deref())
                .map(tally_core::SiteCode::parse)
                .transpose()?,
        })
    }

    fn page(&self) -> Result<Page, ApiError> {
        PageParams::new(self.after, self.limit).page()
    }
}

#[utoipa::path(get, path = "/api/v1/usage", tag = "usage", security(("bearer" = [])),
    params(UsageParams),
    responses((status = 200, description = "Raw usage records (SMS_MeterData), by id", body = Vec<UsageRecord>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, description = "Unknown rule", body = ErrorBody)))]
pub(crate) async fn usage(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<UsageParams>,
) -> Result<Json<Vec<UsageRecord>>, ApiError> {
    let (page, filter) = (p.page()?, p.filter()?);
    Ok(Json(
        usage_reads::records(&state.service, &filter, page).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/runs", tag = "usage", security(("bearer" = [])),
    params(UsageParams),
    responses((status = 200, description = "Program executions stitched from their records, by start time", body = Vec<Run>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, description = "Unknown rule", body = ErrorBody)))]
pub(crate) async fn runs(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<UsageParams>,
) -> Result<Json<Vec<Run>>, ApiError> {
    let (page, filter) = (p.page()?, p.filter()?);
    let skip = page.after.max(0) as usize;
    let runs = usage_reads::runs(&state.service, &filter, skip, page.limit as usize).await?;
    Ok(Json(runs))
}
