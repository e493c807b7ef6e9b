//! HTTP routes. Each handler carries its OpenAPI description, so the served document cannot
//! drift from the code.

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use tally_api::WhoAmI;
use tally_core::Site;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::Operator;
use crate::config::Limits;
use crate::error::ErrorBody;
use crate::{
    admin_api, agent_api, certificates_api, compliance_api, extract, identity_api, org_api,
    read_api, reclaim_api, reports_api, site_api, tasks_api, users_api, ApiError, AppState,
};

pub(crate) fn router(state: AppState, limits: &Limits) -> Router {
    Router::new()
        .merge(crate::ops::routes())
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/sites", get(sites))
        .route("/api/v1/agent/enroll", post(agent_api::enroll))
        .route("/api/v1/agent/policy", get(agent_api::policy))
        .route("/api/v1/agent/usage", post(agent_api::upload_usage))
        .route("/api/v1/agent/heartbeat", post(agent_api::heartbeat))
        .route("/api/v1/agent/inventory", post(agent_api::upload_inventory))
        .route("/api/v1/rules/auto", post(admin_api::auto_rules))
        .route(
            "/api/v1/tokens",
            get(admin_api::list_tokens).post(admin_api::create_token),
        )
        .route("/api/v1/tokens/{id}", delete(admin_api::revoke_token))
        .route(
            "/api/v1/enrollment-tokens",
            get(admin_api::list_enrollment_tokens).post(admin_api::create_enrollment_token),
        )
        .route(
            "/api/v1/enrollment-tokens/{id}",
            delete(admin_api::revoke_enrollment_token),
        )
        .route("/api/v1/agents", get(admin_api::list_agents))
        .route("/api/v1/agents/{id}", delete(admin_api::revoke_agent))
        .route(
            "/api/v1/rules",
            get(admin_api::list_rules).post(admin_api::create_rule),
        )
        .route(
            "/api/v1/rules/{id}",
            get(admin_api::get_rule)
                .put(admin_api::update_rule)
                .delete(admin_api::delete_rule),
        )
        .route("/api/v1/audit", get(admin_api::audit_log))
        .route("/api/v1/tasks", get(tasks_api::list))
        .route("/api/v1/tasks/{name}", patch(tasks_api::change))
        .route("/api/v1/tasks/{name}/run", post(tasks_api::run))
        .route("/api/v1/summaries/file-usage", get(tasks_api::file_usage))
        .route("/api/v1/summaries/monthly", get(tasks_api::monthly))
        .route(
            "/api/v1/applications",
            get(compliance_api::applications).post(compliance_api::put_application),
        )
        .route(
            "/api/v1/applications/{id}",
            delete(compliance_api::delete_application),
        )
        .route(
            "/api/v1/licenses",
            get(compliance_api::licenses).post(compliance_api::add_license),
        )
        .route("/api/v1/licenses/expiring", get(compliance_api::expiring))
        .route(
            "/api/v1/licenses/{id}",
            delete(compliance_api::delete_license).patch(compliance_api::edit_license),
        )
        .route("/api/v1/compliance", get(compliance_api::compliance))
        .route(
            "/api/v1/compliance/detail",
            get(compliance_api::compliance_detail),
        )
        .route(
            "/api/v1/compliance/snapshots",
            get(compliance_api::snapshots),
        )
        .route("/api/v1/reclaim", get(compliance_api::reclaim))
        .route(
            "/api/v1/reclaim/campaign",
            get(reclaim_api::campaign).post(reclaim_api::propose),
        )
        .route(
            "/api/v1/reclaim/campaign/{id}/step",
            post(reclaim_api::step),
        )
        .route(
            "/api/v1/certificates",
            get(certificates_api::list).post(certificates_api::import),
        )
        .route(
            "/api/v1/certificates/issuers",
            get(certificates_api::issuers).post(certificates_api::trust),
        )
        .route("/api/v1/site", get(site_api::show))
        .route("/api/v1/site/alias", put(site_api::set_alias))
        .route(
            "/api/v1/site/relevance",
            get(site_api::relevance).put(site_api::set_relevance),
        )
        .route("/api/v1/system-metering", post(site_api::run))
        .route("/api/v1/reports", get(reports_api::catalogue))
        .route("/api/v1/reports/{name}", get(reports_api::report))
        .route("/api/v1/devices", get(read_api::devices))
        .route(
            "/api/v1/devices/{id}/inventory",
            get(read_api::device_inventory),
        )
        .route("/api/v1/users", get(read_api::users))
        .route(
            "/api/v1/devices/{id}/status",
            put(identity_api::set_device_status),
        )
        .route(
            "/api/v1/devices/{id}/merge",
            post(identity_api::merge_devices),
        )
        .route(
            "/api/v1/users/service-account",
            post(identity_api::set_service_account),
        )
        .route("/api/v1/users/forget", post(users_api::forget))
        .route("/api/v1/users/resolve", post(users_api::resolve))
        .route("/api/v1/org-nodes", get(org_api::nodes))
        .route(
            "/api/v1/org-rules",
            get(org_api::rules).post(org_api::add_rule),
        )
        .route("/api/v1/org-rules/{id}", delete(org_api::delete_rule))
        .route("/api/v1/devices/{id}/org-node", put(org_api::place_device))
        .route("/api/v1/users/{id}/org-node", put(org_api::place_user))
        .route("/api/v1/files", get(read_api::files))
        .route("/api/v1/usage", get(read_api::usage))
        .route("/api/v1/runs", get(read_api::runs))
        .merge(crate::hierarchy_api::routes())
        .fallback(extract::not_found)
        .method_not_allowed_fallback(extract::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        // Outside the timeout and the body limit, so their refusals are rewritten too.
        .layer(axum::middleware::map_response(extract::json_errors))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "server",
    responses((status = 200, description = "This API's OpenAPI 3.1 document")))]
pub(crate) async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::openapi_value())
}

#[utoipa::path(get, path = "/api/v1/whoami", tag = "operators", security(("bearer" = [])),
    responses(
        (status = 200, description = "The token's operator", body = WhoAmI),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
    ))]
pub(crate) async fn whoami(operator: Operator) -> Json<WhoAmI> {
    Json(WhoAmI {
        name: operator.0.name,
        role: operator.0.role,
    })
}

#[utoipa::path(get, path = "/api/v1/sites", tag = "sites", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every site this server knows", body = Vec<Site>),
        (status = 401, description = "Missing, unknown or revoked token", body = ErrorBody),
    ))]
pub(crate) async fn sites(
    _operator: Operator,
    State(state): State<AppState>,
) -> Result<Json<Vec<Site>>, ApiError> {
    Ok(Json(state.store.sites().await?))
}
