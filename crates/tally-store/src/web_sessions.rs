//! The web console's sign-in sessions. Only a hash of each session's secret is kept; a session
//! lives only while the operator token it was opened with does.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::OperatorToken;

use crate::{AuditNote, Result};

/// A stored session: whose it is (its live operator token) and when it began and was last used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub operator: OperatorToken,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

#[async_trait]
pub trait WebSessionStore: Send + Sync {
    /// Stores a session whose secret hashes to `id_hash` for the operator token
    /// `operator_token_id`, begun at `at`, with its audit entry.
    async fn create_web_session(
        &self,
        id_hash: &str,
        operator_token_id: i64,
        at: DateTime<Utc>,
        audit: AuditNote<'_>,
    ) -> Result<()>;

    /// The session whose secret hashes to `id_hash`, when there is one and its token is live.
    async fn web_session(&self, id_hash: &str) -> Result<Option<WebSession>>;

    /// Records that the session was used at `at` (its idle expiry starts again).
    async fn touch_web_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<()>;

    /// Ends the session, with its audit entry; false when there was none.
    async fn delete_web_session(&self, id_hash: &str, audit: AuditNote<'_>) -> Result<bool>;

    /// Deletes every session last used before `idle_before` or begun before `begun_before`;
    /// how many there were.
    async fn delete_stale_web_sessions(
        &self,
        idle_before: DateTime<Utc>,
        begun_before: DateTime<Utc>,
    ) -> Result<u64>;
}
