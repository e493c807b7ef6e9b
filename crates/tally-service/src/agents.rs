//! What the agent API decides, kept out of the HTTP layer so the coming site sync (a child
//! site is an agent of its parent, in effect) decides it the same way: whether a caller is a
//! live agent, the policy its device meters by, and what its uploads and heartbeats record.

use chrono::{DateTime, Utc};
use tally_core::agents::Agent;
use tally_core::policy::rules_for_site;
use tally_core::wire::v1::{Policy, UsageBatch};
use tally_store::BatchOutcome;

use crate::{Result, Service, ServiceError};

/// Reporting cadence sent to agents: Configuration Manager reports every 7 days; Tally wants
/// near-real-time figures, so 15 minutes.
pub const REPORT_INTERVAL_SECS: u64 = 15 * 60;
pub const INVENTORY_INTERVAL_SECS: u64 = 24 * 60 * 60;
/// Once per reporting cycle: what "agents reporting in the last cycle" counts. A million agents
/// then send about 1,100 heartbeats a second.
pub const HEARTBEAT_INTERVAL_SECS: u64 = REPORT_INTERVAL_SECS;

/// Why a caller is not a live agent; the server answers 401 with this and how to fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("unknown agent")]
    Unknown,
    #[error("wrong agent secret")]
    WrongSecret,
    #[error("this agent has been revoked")]
    Revoked,
}

/// The live agent `id` whose secret hashes to `secret_hash`, or why the caller is not one.
/// The outer error is a storage failure, the inner one a refusal.
pub async fn authenticate(
    service: &Service,
    id: &str,
    secret_hash: &str,
) -> Result<Result<Agent, Refused>> {
    let Some((agent, stored_hash)) = service.store().agent(id).await? else {
        return Ok(Err(Refused::Unknown));
    };
    if stored_hash != secret_hash {
        return Ok(Err(Refused::WrongSecret));
    }
    if agent.revoked_at.is_some() {
        return Ok(Err(Refused::Revoked));
    }
    Ok(Ok(agent))
}

/// The policy of `agent`'s device: the rules that apply on its site (its own and those of
/// parent sites that reach down), and the intervals it reports at.
pub async fn policy(service: &Service, agent: &Agent) -> Result<Policy> {
    let store = service.store();
    let device = store.device(agent.device_id).await?.ok_or_else(|| {
        ServiceError::NotFound("the agent's device no longer exists; re-enrol".into())
    })?;
    let sites = store.sites().await?;
    let rules = store.rules().await?;
    Ok(Policy {
        site_code: device.site_code.to_string(),
        rules: rules_for_site(&device.site_code, &sites, &rules)
            .into_iter()
            .cloned()
            .collect(),
        report_interval_secs: REPORT_INTERVAL_SECS,
        inventory_interval_secs: INVENTORY_INTERVAL_SECS,
        heartbeat_interval_secs: HEARTBEAT_INTERVAL_SECS,
    })
}

/// Stores `agent`'s usage batch (already checked to be its own device's and of a bounded
/// size): each record validated, then stored; records the agent dropped from a full spool are
/// added to its count once, not again when the batch is replayed.
pub async fn upload_usage(
    service: &Service,
    agent: &Agent,
    batch: &UsageBatch,
    now: DateTime<Utc>,
) -> Result<BatchOutcome> {
    batch
        .validate(now)
        .map_err(|e| ServiceError::Invalid(e.to_string()))?;
    let outcome = service
        .store_usage(agent.device_id, &batch.batch_id, &batch.records, now)
        .await?;
    // A replayed batch is answered with its first acknowledgement; here it stored nothing.
    let (stored, duplicates) = match outcome.replayed {
        false => (outcome.stored, outcome.duplicates),
        true => (0, batch.records.len() as u64),
    };
    service.telemetry().ingested(stored, duplicates);
    if batch.dropped > 0 && !outcome.replayed {
        tracing::warn!(agent = %agent.id, dropped = batch.dropped, "agent reports records dropped from a full spool");
        let version = agent.agent_version.as_deref().unwrap_or("");
        // Validation bounds it far below i64::MAX; the store adds with saturation.
        let dropped = i64::try_from(batch.dropped).unwrap_or(i64::MAX);
        (service.store())
            .agent_heartbeat(&agent.id, version, dropped, now)
            .await?;
    }
    Ok(outcome)
}

/// Records that `agent` is alive and runs `version`, with the records its spool holds.
pub async fn heartbeat(
    service: &Service,
    agent: &Agent,
    version: &str,
    spooled: Option<u64>,
) -> Result<()> {
    let beat = tally_store::Heartbeat {
        agent_id: agent.id.clone(),
        version: version.to_string(),
        dropped: 0,
        // Validated to at most MAX_SPOOLED_RECORDS.
        spooled: spooled.map(|n| n.min(i64::MAX as u64) as i64),
        at: Utc::now(),
    };
    service.store_heartbeat(beat).await
}
