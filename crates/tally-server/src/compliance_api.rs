//! Applications, licenses, the compliance position and the reclaim list over HTTP. The service
//! adds applications and licenses one at a time with the same checks `tally import` runs on a
//! file (`tally_service::licensing`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use tally_api::{Expiring, LicensePatch, LicenseSaved, LicenseView, TrendPoint};
use tally_core::import::{ApplicationRow, LicenseRow};
use tally_service::compliance::MAX_PAGE;
use tally_store::AppRecord;
use utoipa::IntoParams;

use crate::auth::Operator;
use crate::error::ErrorBody;
use crate::extract::{JsonBody, Path, Query};
use crate::{ApiError, AppState};
use tally_service::compliance::AppDetail;
use tally_service::{licensing, scope, trends, AppPosition, ReclaimQuery, ReclaimReport};

#[utoipa::path(get, path = "/api/v1/applications", tag = "licensing", security(("bearer" = [])),
    responses((status = 200, body = Vec<AppRecord>), (status = 401, body = ErrorBody)))]
pub(crate) async fn applications(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<AppRecord>>, ApiError> {
    Ok(Json(state.store.applications().await?))
}

#[utoipa::path(get, path = "/api/v1/licenses", tag = "licensing", security(("bearer" = [])),
    responses((status = 200, description = "The licenses there are now, by id, with their application's and target's names", body = Vec<LicenseView>),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn licenses(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<LicenseView>>, ApiError> {
    Ok(Json(licensing::licenses(state.store.as_ref()).await?))
}

/// How far ahead to look for licenses ending.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExpiringParams {
    /// Ending within this many days from today, today included (default 90).
    #[param(minimum = 0, maximum = 3660, default = 90)]
    days: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/licenses/expiring", tag = "licensing", security(("bearer" = [])),
    params(ExpiringParams),
    responses((status = 200, description = "Validity and maintenance ending within the days, soonest first", body = Vec<Expiring>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn expiring(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<ExpiringParams>,
) -> Result<Json<Vec<Expiring>>, ApiError> {
    let today = Utc::now().date_naive();
    let days = p.days.unwrap_or(90);
    Ok(Json(
        licensing::expiring(state.store.as_ref(), today, days).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/applications", tag = "licensing", security(("bearer" = [])),
    request_body = ApplicationRow,
    responses((status = 200, description = "Added, or changed if one of that name existed", body = AppRecord),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn put_application(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(row): JsonBody<ApplicationRow>,
) -> Result<Json<AppRecord>, ApiError> {
    op.require_admin()?;
    let record = licensing::put_application(&state.service, op.name(), &row, Utc::now()).await?;
    Ok(Json(record))
}

#[utoipa::path(delete, path = "/api/v1/applications/{id}", tag = "licensing", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "Removed: current lists leave it out; positions on earlier days, its recognition rules, sessions and snapshots keep it"),
        (status = 400, description = "It still has licenses", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_application(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    op.require_admin()?;
    licensing::delete_application(state.store.as_ref(), op.name(), id, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/licenses", tag = "licensing", security(("bearer" = [])),
    request_body = LicenseRow,
    responses((status = 201, description = "Added; `warnings` says what of it cannot be used (units that never can, a quantity of 0, a currency other than its application's other licenses')", body = LicenseSaved),
        (status = 400, description = "A metric the application does not accept, an assignment the metric does not allow, an unknown target; the message names the allowed values", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn add_license(
    op: Operator,
    State(state): State<AppState>,
    JsonBody(row): JsonBody<LicenseRow>,
) -> Result<(StatusCode, Json<LicenseSaved>), ApiError> {
    op.require_admin()?;
    let license = licensing::add_license(&state.service, op.name(), &row, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(license)))
}

#[utoipa::path(patch, path = "/api/v1/licenses/{id}", tag = "licensing", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = LicensePatch,
    responses((status = 200, description = "Changed, with the same checks and warnings as adding", body = LicenseSaved),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn edit_license(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    JsonBody(patch): JsonBody<LicensePatch>,
) -> Result<Json<LicenseSaved>, ApiError> {
    op.require_admin()?;
    let saved = licensing::edit_license(&state.service, op.name(), id, &patch).await?;
    Ok(Json(saved))
}

#[utoipa::path(delete, path = "/api/v1/licenses/{id}", tag = "licensing", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "Removed: it no longer counts from now on; positions on earlier days still count it"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_license(
    op: Operator,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    op.require_admin()?;
    licensing::delete_license(state.store.as_ref(), op.name(), id, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
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
    /// Only the demand of devices of this site and the sites below it (at a parent; default:
    /// the whole subtree this site holds), against this site's licenses.
    site: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/compliance", tag = "licensing", security(("bearer" = [])),
    params(ComplianceParams),
    responses((status = 200, description = "Each application's position, summarised: figures, counts and reasons; the consumers are listed by /api/v1/compliance/detail", body = Vec<AppPosition>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn compliance(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<ComplianceParams>,
) -> Result<Json<Vec<AppPosition>>, ApiError> {
    let as_of = p.as_of.unwrap_or_else(|| Utc::now().date_naive());
    let sites = scope::subtree_of(&state.service, p.site.as_deref()).await?;
    let (app, sites) = (p.app.as_deref(), sites.as_deref());
    let positions = scope::positions(&state.service, as_of, app, sites).await?;
    Ok(Json(positions))
}

/// Which application's position to detail, and which page of its consumers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DetailParams {
    /// The application (by name, any case).
    app: String,
    /// The position as it stood on this day (YYYY-MM-DD); default today.
    as_of: Option<NaiveDate>,
    /// Uncovered and excluded consumers listed at most (each list).
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<i64>,
    /// Consumers skipped first (each list).
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
    /// Only the demand of devices of this site and the sites below it (at a parent; default:
    /// the whole subtree this site holds), against this site's licenses.
    site: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/compliance/detail", tag = "licensing", security(("bearer" = [])),
    params(DetailParams),
    responses((status = 200, description = "One application's position: per org node and per license by name, and a page of its uncovered and excluded devices and users by name", body = AppDetail),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn compliance_detail(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<DetailParams>,
) -> Result<Json<AppDetail>, ApiError> {
    let as_of = p.as_of.unwrap_or_else(|| Utc::now().date_naive());
    let page = (p.limit.unwrap_or(100), p.offset.unwrap_or(0));
    let sites = scope::subtree_of(&state.service, p.site.as_deref()).await?;
    let detail = scope::position_detail(&state.service, as_of, &p.app, page, sites.as_deref());
    Ok(Json(detail.await?))
}

/// Which snapshots to read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SnapshotParams {
    /// Only this application (by name).
    app: Option<String>,
    /// First day (YYYY-MM-DD); default 90 days ago.
    from: Option<NaiveDate>,
    /// Only the demand of devices of this site and the sites below it (at a parent; default:
    /// the whole subtree this site holds), against this site's licenses. The kept snapshots
    /// are the whole subtree's, so each day that has them is computed again over those devices
    /// as `compliance?site=&as_of=` computes it, at most 92 days back.
    site: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/compliance/snapshots", tag = "licensing", security(("bearer" = [])),
    params(SnapshotParams),
    responses((status = 200, description = "Daily figures per application, for trends, by day", body = Vec<TrendPoint>),
        (status = 400, description = "A malformed query or site code, or a site's trend from over 92 days back", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, description = "No application or no site of that name", body = ErrorBody)))]
pub(crate) async fn snapshots(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<SnapshotParams>,
) -> Result<Json<Vec<TrendPoint>>, ApiError> {
    let today = Utc::now().date_naive();
    let (store, app) = (state.service.store(), p.app.as_deref());
    let points = match scope::subtree_of(&state.service, p.site.as_deref()).await? {
        Some(sites) => trends::snapshots_in(store, app, p.from, today, &sites).await?,
        None => trends::snapshots(store, app, p.from, today).await?,
    };
    Ok(Json(points))
}

/// Which installations to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReclaimParams {
    /// Unused for at least this many days (default 90).
    #[param(minimum = 1, maximum = 3650, default = 90)]
    days: Option<i64>,
    /// As it stood on this day (YYYY-MM-DD); default today.
    as_of: Option<NaiveDate>,
    /// Only this application (its name, any case).
    app: Option<String>,
    /// Idle installations listed at most.
    #[param(minimum = 1, maximum = 1000, default = 1000)]
    limit: Option<i64>,
    /// Idle installations skipped first.
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
    /// Only installations on devices of this site and the sites below it (at a parent;
    /// default: the whole subtree this site holds).
    site: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/reclaim", tag = "licensing", security(("bearer" = [])),
    params(ReclaimParams),
    responses((status = 200, description = "Installations whose use is known and that were not used for the given days, most costly first, with the license each would free, a page at a time with the total count and value of them all; and, apart, the applications whose use Tally cannot know (never counted as unused)", body = ReclaimReport),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn reclaim(
    _op: Operator,
    State(state): State<AppState>,
    Query(p): Query<ReclaimParams>,
) -> Result<Json<ReclaimReport>, ApiError> {
    let days = p.days.unwrap_or(90);
    if !(1..=3650).contains(&days) {
        return Err(ApiError::BadRequest("days: between 1 and 3650".into()));
    }
    if let Some(app) = &p.app {
        tally_core::limits::check_name("app", app, tally_core::limits::MAX_NAME)?;
    }
    let as_of = p.as_of.unwrap_or_else(|| Utc::now().date_naive());
    let devices = match scope::subtree_of(&state.service, p.site.as_deref()).await? {
        Some(sites) => Some(scope::devices_of(state.service.store(), &sites).await?),
        None => None,
    };
    let query = ReclaimQuery {
        application: p.app,
        devices,
        ..ReclaimQuery::days(as_of, days)
    };
    let page = (p.limit.unwrap_or(MAX_PAGE), p.offset.unwrap_or(0));
    let list = state.service.reclaim_page(&query, page).await?;
    Ok(Json(list))
}
