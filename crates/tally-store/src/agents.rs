//! Who may talk to the server: operators' API tokens, enrolment tokens, and enrolled agents.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::agents::{Agent, EnrollmentToken, NewAgent, NewEnrollmentToken};
use tally_core::operators::{OperatorToken, Role};
use tally_core::{Device, SiteCode};

use crate::{AuditNote, AuditOf, Result};

/// One agent's sign of life, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub agent_id: String,
    pub version: String,
    /// Records the agent dropped from a full spool since it last said so.
    pub dropped: i64,
    /// Records waiting in its spool, when it said (older agents do not).
    pub spooled: Option<i64>,
    pub at: DateTime<Utc>,
}

/// The estate's agents in a few figures, counted by the database (no agent list is read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentFigures {
    /// Enrolled and not revoked.
    pub enrolled: i64,
    /// Of those, heard from since the time asked about.
    pub reporting: i64,
    /// Records they reported dropping from a full spool, in all.
    pub dropped: i64,
    /// Records waiting in their spools, as each last said.
    pub spooled: i64,
}

#[async_trait]
pub trait AgentStore: Send + Sync {
    async fn create_operator_token(
        &self,
        name: &str,
        role: Role,
        token_hash: &str,
        at: DateTime<Utc>,
        audit: AuditOf<'_, OperatorToken>,
    ) -> Result<OperatorToken>;
    async fn operator_tokens(&self) -> Result<Vec<OperatorToken>>;
    /// The live (not revoked) token with this hash.
    async fn operator_token_by_hash(&self, token_hash: &str) -> Result<Option<OperatorToken>>;
    async fn revoke_operator_token(
        &self,
        id: i64,
        at: DateTime<Utc>,
        audit: AuditNote<'_>,
    ) -> Result<bool>;

    async fn create_enrollment_token(
        &self,
        token: &NewEnrollmentToken,
        token_hash: &str,
        at: DateTime<Utc>,
        audit: AuditOf<'_, EnrollmentToken>,
    ) -> Result<EnrollmentToken>;
    async fn enrollment_tokens(&self) -> Result<Vec<EnrollmentToken>>;
    async fn revoke_enrollment_token(
        &self,
        id: i64,
        at: DateTime<Utc>,
        audit: AuditNote<'_>,
    ) -> Result<bool>;
    /// In one transaction: takes one use of a live enrolment token, creates the device in the
    /// token's site and the agent. `None` when the token is unknown, revoked, expired or used up.
    async fn enroll_agent(
        &self,
        token_hash: &str,
        enrollment: &NewAgent,
        at: DateTime<Utc>,
        audit: AuditOf<'_, (Agent, Device)>,
    ) -> Result<Option<(Agent, Device)>>;
    /// The agent and its secret's hash.
    async fn agent(&self, id: &str) -> Result<Option<(Agent, String)>>;
    async fn agents(&self) -> Result<Vec<Agent>>;
    async fn revoke_agent(&self, id: &str, at: DateTime<Utc>, audit: AuditNote<'_>)
        -> Result<bool>;
    /// Records heartbeats in one transaction, with spool drops the agents report (added to
    /// their running totals). An unknown agent's heartbeat is skipped.
    async fn agent_heartbeats(&self, beats: &[Heartbeat]) -> Result<()>;

    /// [`AgentStore::agent_heartbeats`] for one agent.
    async fn agent_heartbeat(
        &self,
        id: &str,
        version: &str,
        dropped: i64,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let beat = Heartbeat {
            agent_id: id.to_string(),
            version: version.to_string(),
            dropped,
            spooled: None,
            at,
        };
        self.agent_heartbeats(&[beat]).await
    }

    /// Live agents counted: enrolled, heard from since `since`, dropped and spooled records.
    async fn agent_figures(&self, since: DateTime<Utc>) -> Result<AgentFigures>;

    /// Enrols `agents` at once, each with a new device of its own in `site`, by multi-row
    /// inserts in one transaction and without enrolment tokens: how `tally bench fleet` seeds
    /// a million agents, which one enrolment (one transaction) each would take many minutes
    /// to. Host names must be distinct within the call: they pair each device with its agent.
    async fn seed_agents(
        &self,
        site: &SiteCode,
        agents: &[NewAgent],
        at: DateTime<Utc>,
    ) -> Result<()>;
}
