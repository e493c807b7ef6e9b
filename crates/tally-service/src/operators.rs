//! Who may talk to the server, changed by an operator: API tokens, enrolment tokens, and
//! agents. Each change is stored with its audit entry in one transaction.

use chrono::Utc;
use tally_api::{CreateEnrollmentToken, CreateToken};
use tally_core::agents::{Agent, EnrollmentToken, NewAgent, ENROLLMENT_TOKEN_DEFAULT_DAYS};
use tally_core::{AuditEntry, Device, OperatorToken};
use tally_store::NewEnrollmentToken;

use tally_core::limits::{check_name, MAX_NAME};

use crate::audit::{entry, OrMissing};
use crate::{Result, Service, ServiceError};

/// Creates an operator token whose secret hashes to `hash`, as `actor`.
pub async fn create_token(
    service: &Service,
    actor: &str,
    req: &CreateToken,
    hash: &str,
) -> Result<OperatorToken> {
    if req.name.trim().is_empty() {
        return Err(ServiceError::Invalid("name: a token needs a name".into()));
    }
    check_name("name", &req.name, MAX_NAME)?;
    let audit =
        |info: &OperatorToken| entry(actor, "token.create", format!("token:{}", info.id), info);
    let store = service.store();
    let at = Utc::now();
    Ok(store
        .create_operator_token(&req.name, req.role, hash, at, Some(&audit))
        .await?)
}

/// Revokes the live operator token `id`, as `actor`.
pub async fn revoke_token(service: &Service, actor: &str, id: i64) -> Result<()> {
    let audit = entry(actor, "token.revoke", format!("token:{id}"), ());
    let store = service.store();
    (store
        .revoke_operator_token(id, Utc::now(), Some(&audit))
        .await)
        .or_missing(|| format!("no live token with id {id}; see tally tokens list"))
}

/// Creates an enrolment token (for this site unless the request names another, expiring
/// [`ENROLLMENT_TOKEN_DEFAULT_DAYS`] from now unless it names a time) whose secret hashes to
/// `hash`, as `actor`.
pub async fn create_enrollment_token(
    service: &Service,
    actor: &str,
    req: CreateEnrollmentToken,
    hash: &str,
) -> Result<EnrollmentToken> {
    let store = service.store();
    let site_code = req.site_code.unwrap_or_else(|| service.site().clone());
    if store.site(&site_code).await?.is_none() {
        return Err(ServiceError::Invalid(format!(
            "site_code: no site {site_code}; see GET /api/v1/sites"
        )));
    }
    if req.max_uses.is_some_and(|n| n < 1) {
        return Err(ServiceError::Invalid("max_uses: must be at least 1".into()));
    }
    check_name("name", &req.name, MAX_NAME)?;
    // A token that is already expired could never enrol anyone: a mistake to say, not a row
    // to create.
    if let Some(at) = req.expires_at.filter(|at| *at <= Utc::now()) {
        return Err(ServiceError::Invalid(format!(
            "expires_at: {} is already past; give a time in the future",
            at.to_rfc3339()
        )));
    }
    let now = Utc::now();
    let default_expiry = || now + chrono::Duration::days(ENROLLMENT_TOKEN_DEFAULT_DAYS);
    let new = NewEnrollmentToken {
        site_code,
        name: req.name,
        expires_at: Some(req.expires_at.unwrap_or_else(default_expiry)),
        max_uses: req.max_uses,
    };
    let audit = |info: &EnrollmentToken| {
        let target = format!("enrollment_token:{}", info.id);
        entry(actor, "enrollment_token.create", target, info)
    };
    Ok(store
        .create_enrollment_token(&new, hash, now, Some(&audit))
        .await?)
}

/// Revokes the live enrolment token `id`, as `actor`.
pub async fn revoke_enrollment_token(service: &Service, actor: &str, id: i64) -> Result<()> {
    let target = format!("enrollment_token:{id}");
    let audit = entry(actor, "enrollment_token.revoke", target, ());
    let store = service.store();
    (store
        .revoke_enrollment_token(id, Utc::now(), Some(&audit))
        .await)
        .or_missing(|| format!("no live enrolment token with id {id}"))
}

/// Revokes the live agent `id`, as `actor`: its next call is refused.
pub async fn revoke_agent(service: &Service, actor: &str, id: &str) -> Result<()> {
    let audit = entry(actor, "agent.revoke", format!("agent:{id}"), ());
    (service
        .store()
        .revoke_agent(id, Utc::now(), Some(&audit))
        .await)
        .or_missing(|| format!("no live agent {id}; see GET /api/v1/agents"))
}

/// Enrols an agent with the enrolment token whose secret hashes to `token_hash`: one use of the
/// token, the device, the agent and the `agent.enroll` entry (by the agent itself), in one
/// transaction. `None` when the token is unknown, revoked, expired or used up.
pub async fn enroll_agent(
    service: &Service,
    token_hash: &str,
    agent: &NewAgent,
) -> Result<Option<(Agent, Device)>> {
    let now = Utc::now();
    let audit = |(agent, device): &(Agent, Device)| AuditEntry {
        at: now,
        actor: format!("agent:{}", agent.id),
        action: "agent.enroll".into(),
        target: format!("device:{}", device.id),
        detail: device.host_name.clone(),
    };
    let store = service.store();
    Ok(store
        .enroll_agent(token_hash, agent, now, Some(&audit))
        .await?)
}

/// What every operator and enrolment token starts with, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "tally_";

/// A new token (256 random bits) and the hash the store keeps of it; the token itself is shown
/// once and never stored.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let hash = crate::web_sessions::secret_hash(&token);
    (token, hash)
}
