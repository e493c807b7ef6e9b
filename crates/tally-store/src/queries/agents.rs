//! Operator tokens, enrolment tokens and agents.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::to_micros;

use super::{Db, DbStore};

/// An agent's columns. `dropped_records` is read through a cast so that a row a sum already
/// overflowed into a REAL (SQLite, before the sum saturated) reads as `i64::MAX` rather than
/// failing every list of agents.
const AGENT_COLUMNS: &str =
    "id, device_id, secret_hash, enrolled_at, last_heartbeat, agent_version,
     CAST(dropped_records AS BIGINT) AS dropped_records, revoked_at";
use crate::rows;
use crate::Result;

/// The device of the machine an agent enrols from, if Tally knows it: devices sharing its
/// machine-id or real serial, judged by [`tally_core::device::matching_device`].
async fn machine_device(
    tx: &mut sqlx::Transaction<'_, Db>,
    agent: &tally_core::agents::NewAgent,
) -> Result<Option<i64>> {
    use tally_core::device::{matching_device, MachineIdentity};
    let identity = MachineIdentity::new(agent.machine_id.as_deref(), agent.serial.as_deref());
    if identity.is_empty() {
        return Ok(None);
    }
    let candidates = sqlx::query_as::<_, rows::DeviceColumns>(
        "SELECT * FROM devices WHERE machine_id = $1 OR serial = $2 ORDER BY id",
    )
    .bind(&identity.machine_id)
    .bind(&identity.serial)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| r.into_device())
    .collect::<Result<Vec<_>>>()?;
    Ok(matching_device(&candidates, &identity).map(|(d, _)| d.id))
}

/// Gives a known machine's device to a new enrolment: the agents enrolled for it before are
/// revoked (their credentials are superseded; a copy still running is refused and stops
/// uploading, so nothing is counted twice), and the device takes what the agent says now.
async fn reenrol_device(
    tx: &mut sqlx::Transaction<'_, Db>,
    device: i64,
    site: &str,
    agent: &tally_core::agents::NewAgent,
    at: DateTime<Utc>,
) -> Result<rows::DeviceColumns> {
    sqlx::query("UPDATE agents SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL")
        .bind(at)
        .bind(device)
        .execute(&mut **tx)
        .await?;
    Ok(sqlx::query_as::<_, rows::DeviceColumns>(
        "UPDATE devices SET site_code = $1, host_name = $2, fqdn = COALESCE($3, fqdn),
             os = COALESCE($4, os), serial = COALESCE($5, serial),
             machine_id = COALESCE($6, machine_id), last_seen = $7
         WHERE id = $8 RETURNING *",
    )
    .bind(site)
    .bind(&agent.host_name)
    .bind(&agent.fqdn)
    .bind(&agent.os)
    .bind(&agent.serial)
    .bind(&agent.machine_id)
    .bind(at)
    .bind(device)
    .fetch_one(&mut **tx)
    .await?)
}

#[async_trait]
impl crate::AgentStore for DbStore {
    async fn create_operator_token(
        &self,
        name: &str,
        role: tally_core::Role,
        token_hash: &str,
        at: DateTime<Utc>,
        audit: crate::AuditOf<'_, tally_core::OperatorToken>,
    ) -> Result<tally_core::OperatorToken> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let token = sqlx::query_as::<_, rows::TokenColumns>(
            "INSERT INTO operator_tokens (name, role, token_hash, created_at)
             VALUES ($1, $2, $3, $4)
             RETURNING id, name, role, created_at, revoked_at",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(token_hash)
        .bind(to_micros(at))
        .fetch_one(&mut *tx)
        .await?
        .into_token()?;
        super::audit::commit_of(tx, audit, &token).await?;
        Ok(token)
    }

    async fn operator_tokens(&self) -> Result<Vec<tally_core::OperatorToken>> {
        let sql = "SELECT id, name, role, created_at, revoked_at FROM operator_tokens ORDER BY id";
        super::all_rows(self, sql, rows::TokenColumns::into_token).await?
    }

    async fn operator_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<tally_core::OperatorToken>> {
        sqlx::query_as::<_, rows::TokenColumns>(
            "SELECT id, name, role, created_at, revoked_at FROM operator_tokens
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.into_token())
        .transpose()
    }

    async fn revoke_operator_token(
        &self,
        id: i64,
        at: DateTime<Utc>,
        audit: crate::AuditNote<'_>,
    ) -> Result<bool> {
        super::revoke_by_id(self, "operator_tokens", (id, at), audit).await
    }

    async fn create_enrollment_token(
        &self,
        token: &tally_core::agents::NewEnrollmentToken,
        token_hash: &str,
        at: DateTime<Utc>,
        audit: crate::AuditOf<'_, tally_core::agents::EnrollmentToken>,
    ) -> Result<tally_core::agents::EnrollmentToken> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let stored = sqlx::query_as::<_, rows::EnrollmentTokenColumns>(
            "INSERT INTO enrollment_tokens (site_code, name, token_hash, created_at, expires_at, max_uses)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        )
        .bind(token.site_code.as_str())
        .bind(&token.name)
        .bind(token_hash)
        .bind(to_micros(at))
        .bind(token.expires_at.map(to_micros))
        .bind(token.max_uses)
        .fetch_one(&mut *tx)
        .await?
        .into_token()?;
        super::audit::commit_of(tx, audit, &stored).await?;
        Ok(stored)
    }

    async fn enrollment_tokens(&self) -> Result<Vec<tally_core::agents::EnrollmentToken>> {
        let sql = "SELECT * FROM enrollment_tokens ORDER BY id";
        super::all_rows(self, sql, rows::EnrollmentTokenColumns::into_token).await?
    }

    async fn revoke_enrollment_token(
        &self,
        id: i64,
        at: DateTime<Utc>,
        audit: crate::AuditNote<'_>,
    ) -> Result<bool> {
        super::revoke_by_id(self, "enrollment_tokens", (id, at), audit).await
    }

    async fn enroll_agent(
        &self,
        token_hash: &str,
        agent: &tally_core::agents::NewAgent,
        at: DateTime<Utc>,
        audit: crate::AuditOf<'_, (tally_core::agents::Agent, tally_core::Device)>,
    ) -> Result<Option<(tally_core::agents::Agent, tally_core::Device)>> {
        let at = to_micros(at);
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        // The conditional update both checks the token and takes a use, atomically.
        let site: Option<String> = sqlx::query_scalar(
            "UPDATE enrollment_tokens SET uses = uses + 1
             WHERE token_hash = $1 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > $2)
               AND (max_uses IS NULL OR uses < max_uses)
             RETURNING site_code",
        )
        .bind(token_hash)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(site) = site else { return Ok(None) };
        let device = match machine_device(&mut tx, agent).await? {
            Some(id) => reenrol_device(&mut tx, id, &site, agent, at).await?,
            None => {
                sqlx::query_as::<_, rows::DeviceColumns>(rows::INSERT_DEVICE)
                    .bind(&site)
                    .bind(&agent.host_name)
                    .bind(&agent.fqdn)
                    .bind(&agent.os)
                    .bind(&agent.serial)
                    .bind(at)
                    .bind(&agent.machine_id)
                    .fetch_one(&mut *tx)
                    .await?
            }
        }
        .into_device()?;
        let (stored, _) = sqlx::query_as::<_, rows::AgentColumns>(
            "INSERT INTO agents (id, device_id, secret_hash, enrolled_at)
             VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(&agent.agent_id)
        .bind(device.id)
        .bind(&agent.secret_hash)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?
        .into_agent();
        let enrolled = (stored, device);
        super::audit::commit_of(tx, audit, &enrolled).await?;
        Ok(Some(enrolled))
    }

    async fn agent(&self, id: &str) -> Result<Option<(tally_core::agents::Agent, String)>> {
        Ok(sqlx::query_as::<_, rows::AgentColumns>(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.into_agent()))
    }

    async fn agents(&self) -> Result<Vec<tally_core::agents::Agent>> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY enrolled_at, id");
        super::all_rows(self, &sql, |r: rows::AgentColumns| r.into_agent().0).await
    }

    async fn revoke_agent(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: crate::AuditNote<'_>,
    ) -> Result<bool> {
        let query =
            sqlx::query("UPDATE agents SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(to_micros(at))
                .bind(id);
        super::change_one(self, query, audit).await
    }

    /// `dropped` is added with saturation at `i64::MAX`: a plain sum overflows, which SQLite
    /// answers by turning the column into REAL (breaking every later read of the agent) and
    /// PostgreSQL with an error on every upload of that agent.
    async fn agent_heartbeats(&self, beats: &[crate::Heartbeat]) -> Result<()> {
        // In agent order: concurrent groups then lock the same rows in the same order and
        // cannot deadlock.
        let mut ordered: Vec<&crate::Heartbeat> = beats.iter().collect();
        ordered.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        for beat in ordered {
            let at = to_micros(beat.at);
            let device: Option<i64> = sqlx::query_scalar(
                "UPDATE agents SET last_heartbeat = $1, agent_version = $2,
                     dropped_records = CASE WHEN dropped_records > 9223372036854775807 - $3
                         THEN 9223372036854775807 ELSE dropped_records + $3 END,
                     spooled_records = COALESCE($5, spooled_records)
                 WHERE id = $4 RETURNING device_id",
            )
            .bind(at)
            .bind(&beat.version)
            .bind(beat.dropped)
            .bind(&beat.agent_id)
            .bind(beat.spooled)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(device) = device {
                sqlx::query("UPDATE devices SET last_seen = $1 WHERE id = $2")
                    .bind(at)
                    .bind(device)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn agent_figures(&self, since: DateTime<Utc>) -> Result<crate::AgentFigures> {
        let (enrolled, reporting, dropped, spooled): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*),
                 COALESCE(SUM(CASE WHEN last_heartbeat >= $1 THEN 1 ELSE 0 END), 0),
                 CAST(COALESCE(SUM(dropped_records), 0) AS BIGINT),
                 CAST(COALESCE(SUM(spooled_records), 0) AS BIGINT)
             FROM agents WHERE revoked_at IS NULL",
        )
        .bind(to_micros(since))
        .fetch_one(&self.pool)
        .await?;
        Ok(crate::AgentFigures {
            enrolled,
            reporting,
            dropped,
            spooled,
        })
    }

    async fn seed_agents(
        &self,
        site: &tally_core::SiteCode,
        agents: &[tally_core::agents::NewAgent],
        at: DateTime<Utc>,
    ) -> Result<()> {
        let at = to_micros(at);
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        for chunk in agents.chunks(crate::import::CHUNK) {
            let mut devices = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO devices (site_code, host_name, fqdn, os, serial, created_at,
                     last_seen, machine_id) ",
            );
            devices.push_values(chunk, |mut b, a| {
                b.push_bind(site.as_str())
                    .push_bind(&a.host_name)
                    .push_bind(&a.fqdn)
                    .push_bind(&a.os)
                    .push_bind(&a.serial)
                    .push_bind(at)
                    .push_bind(at)
                    .push_bind(&a.machine_id);
            });
            devices.push(" RETURNING id, host_name");
            let ids: std::collections::HashMap<String, i64> = devices
                .build_query_as::<(i64, String)>()
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(id, host)| (host, id))
                .collect();
            if ids.len() != chunk.len() {
                return Err(crate::StoreError::Conflict(
                    "seeded agents must have distinct host names; nothing was stored".into(),
                ));
            }
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO agents (id, device_id, secret_hash, enrolled_at) ",
            );
            insert.push_values(chunk, |mut b, a| {
                b.push_bind(&a.agent_id)
                    .push_bind(ids[&a.host_name])
                    .push_bind(&a.secret_hash)
                    .push_bind(at);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
