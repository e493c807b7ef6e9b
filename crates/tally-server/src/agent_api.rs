//! The agent API (`/api/v1/agent/…`): enrolment, policy, usage upload, heartbeat. Separate from
//! the admin API, with its own credentials: an agent authenticates as itself and can only write
//! for its own device.

use axum::extract::{FromRequestParts, State};
use axum::http::header::{ETAG, IF_NONE_MATCH};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tally_core::agents::Agent;
use tally_core::wire::v1::{
    EnrollRequest, EnrollResponse, Heartbeat, Inventory, Policy, UsageAck, UsageBatch,
    MAX_BATCH_RECORDS,
};
use tally_service::{agents, operators};
use tally_store::NewAgent;

use crate::auth::{hash_token, id_and_secret};
use crate::error::ErrorBody;
use crate::extract::JsonBody;
use crate::rate_limit::Caller;
use crate::{ApiError, AppState};

/// The agent making a request, from `Authorization: Bearer <agent_id>.<secret>`.
pub struct AgentAuth(pub Agent);

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |why: &str| {
            ApiError::Unauthorized(format!(
                "{why}; re-enrol the agent with a valid enrolment token"
            ))
        };
        let (id, secret) =
            id_and_secret(&parts.headers, "agent").map_err(|why| unauthorized(&why))?;
        let agent = agents::authenticate(&state.service, id, &hash_token(secret))
            .await?
            .map_err(|refused| unauthorized(&refused.to_string()))?;
        state.rate_limits.check(Caller::Agent(id))?;
        Ok(AgentAuth(agent))
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

#[utoipa::path(post, path = "/api/v1/agent/enroll", tag = "agent", request_body = EnrollRequest,
    responses(
        (status = 200, description = "Enrolled; keep the secret, it is not shown again", body = EnrollResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Enrolment token unknown, revoked, expired or used up", body = ErrorBody),
    ))]
pub(crate) async fn enroll(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    req.validate()?;
    let agent_id = format!("ag_{}", random_hex(12));
    let secret = random_hex(32);
    let new = NewAgent {
        agent_id: agent_id.clone(),
        secret_hash: hash_token(&secret),
        host_name: req.host_name,
        fqdn: req.fqdn,
        os: req.os,
        serial: req.serial,
        machine_id: req.machine_id,
    };
    let token_hash = hash_token(&req.enrollment_token);
    let enrolled = operators::enroll_agent(&state.service, &token_hash, &new).await?;
    let Some((agent, device)) = enrolled else {
        return Err(ApiError::Unauthorized(
            "the enrolment token is unknown, revoked, expired or used up; ask an administrator for a new one (tally enrollment create)".into(),
        ));
    };
    tracing::info!(agent = %agent.id, device = device.id, host = %device.host_name, "agent enrolled");
    Ok(Json(EnrollResponse {
        agent_id,
        agent_secret: secret,
        device_id: device.id,
        site_code: device.site_code.to_string(),
    }))
}

#[utoipa::path(get, path = "/api/v1/agent/policy", tag = "agent", security(("agent" = [])),
    responses(
        (status = 200, description = "Rules and intervals for this agent's site", body = Policy,
            headers(("ETag" = String, description = "Send back in If-None-Match"))),
        (status = 304, description = "Unchanged since the ETag sent in If-None-Match"),
        (status = 401, description = "Unknown, wrong or revoked agent credentials", body = ErrorBody),
    ))]
pub(crate) async fn policy(
    AgentAuth(agent): AgentAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let policy: Policy = agents::policy(&state.service, &agent).await?;
    let body = serde_json::to_vec(&policy).expect("policy serialises");
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
    let unchanged = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, [(ETAG, etag)]).into_response());
    }
    Ok((
        [
            (ETAG, etag),
            (
                axum::http::header::CONTENT_TYPE,
                "application/json".to_string(),
            ),
        ],
        body,
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/v1/agent/usage", tag = "agent", security(("agent" = [])),
    request_body = UsageBatch,
    responses(
        (status = 200, description = "Stored (or, for a replayed batch_id, already stored)", body = UsageAck),
        (status = 400, description = "A record is invalid; the message names its index and field", body = ErrorBody),
        (status = 401, description = "Unknown, wrong or revoked agent credentials", body = ErrorBody),
        (status = 403, description = "The batch names a device other than the agent's own", body = ErrorBody),
        (status = 413, description = "Body or record count over the limit", body = ErrorBody),
    ))]
pub(crate) async fn upload_usage(
    AgentAuth(agent): AgentAuth,
    State(state): State<AppState>,
    JsonBody(batch): JsonBody<UsageBatch>,
) -> Result<Json<UsageAck>, ApiError> {
    if batch.device_id.is_some_and(|d| d != agent.device_id) {
        return Err(ApiError::Forbidden(format!(
            "agent {} may only upload usage for its own device {}",
            agent.id, agent.device_id
        )));
    }
    if batch.records.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} records in one batch; at most {MAX_BATCH_RECORDS}, send smaller batches",
            batch.records.len()
        )));
    }
    let outcome = agents::upload_usage(&state.service, &agent, &batch, Utc::now()).await?;
    Ok(Json(UsageAck {
        batch_id: batch.batch_id,
        stored: outcome.stored,
        duplicates: outcome.duplicates,
    }))
}

#[utoipa::path(post, path = "/api/v1/agent/heartbeat", tag = "agent", security(("agent" = [])),
    request_body = Heartbeat,
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, description = "Malformed heartbeat", body = ErrorBody),
        (status = 401, description = "Unknown, wrong or revoked agent credentials", body = ErrorBody),
    ))]
pub(crate) async fn heartbeat(
    AgentAuth(agent): AgentAuth,
    State(state): State<AppState>,
    JsonBody(beat): JsonBody<Heartbeat>,
) -> Result<StatusCode, ApiError> {
    beat.validate()?;
    agents::heartbeat(
        &state.service,
        &agent,
        &beat.agent_version,
        beat.spooled_records,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/agent/inventory", tag = "agent", security(("agent" = [])),
    request_body = Inventory,
    responses(
        (status = 200, description = "Stored, or unchanged since the last upload", body = InventoryAck),
        (status = 400, description = "Malformed inventory", body = ErrorBody),
        (status = 401, description = "Unknown, wrong or revoked agent credentials", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
    ))]
pub(crate) async fn upload_inventory(
    AgentAuth(agent): AgentAuth,
    State(state): State<AppState>,
    JsonBody(inventory): JsonBody<Inventory>,
) -> Result<Json<InventoryAck>, ApiError> {
    inventory.validate()?;
    let changed = state
        .service
        .store_inventory(agent.device_id, inventory, Utc::now())
        .await?;
    Ok(Json(InventoryAck { changed }))
}

/// Whether an inventory upload changed what was stored.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct InventoryAck {
    pub changed: bool,
}
