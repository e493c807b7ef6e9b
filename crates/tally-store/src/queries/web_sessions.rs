//! The web console's sessions.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::{to_micros, OperatorToken, Role};

use super::DbStore;
use crate::{AuditNote, Result, StoreError, WebSession};

/// A session joined with its token: token id, name, role, created, revoked; session begun,
/// last used.
type SessionRow = (
    i64,
    String,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn session_of(row: SessionRow) -> Result<WebSession> {
    let (id, name, role, created_at, revoked_at, begun, last_seen_at) = row;
    let role = Role::parse(&role).ok_or(StoreError::Corrupt {
        column: "operator_tokens.role",
        value: role,
    })?;
    Ok(WebSession {
        operator: OperatorToken {
            id,
            name,
            role,
            created_at,
            revoked_at,
        },
        created_at: begun,
        last_seen_at,
    })
}

#[async_trait]
impl crate::WebSessionStore for DbStore {
    async fn create_web_session(
        &self,
        id_hash: &str,
        operator_token_id: i64,
        at: DateTime<Utc>,
        audit: AuditNote<'_>,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, operator_token_id, created_at, last_seen_at)
             VALUES ($1, $2, $3, $3)",
        )
        .bind(id_hash)
        .bind(operator_token_id)
        .bind(to_micros(at))
        .execute(&mut *tx)
        .await?;
        super::audit::commit_with(tx, audit).await
    }

    async fn web_session(&self, id_hash: &str) -> Result<Option<WebSession>> {
        sqlx::query_as::<_, SessionRow>(
            "SELECT t.id, t.name, t.role, t.created_at, t.revoked_at, s.created_at, s.last_seen_at
             FROM web_sessions s JOIN operator_tokens t ON t.id = s.operator_token_id
             WHERE s.id_hash = $1 AND t.revoked_at IS NULL",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?
        .map(session_of)
        .transpose()
    }

    async fn touch_web_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(to_micros(at))
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_web_session(&self, id_hash: &str, audit: AuditNote<'_>) -> Result<bool> {
        let query = sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1").bind(id_hash);
        super::change_one(self, query, audit).await
    }

    async fn delete_stale_web_sessions(
        &self,
        idle_before: DateTime<Utc>,
        begun_before: DateTime<Utc>,
    ) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM web_sessions WHERE last_seen_at < $1 OR created_at < $2")
                .bind(to_micros(idle_before))
                .bind(to_micros(begun_before))
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }
}
