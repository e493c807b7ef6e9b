//! The site hierarchy: links, site status, copied rules, received devices, sync watermarks.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::hierarchy::{AgentHealth, SiteLink, SiteState, SyncedRecord};
use tally_core::wire::v1::{UsageRecordV1, UserRef};
use tally_core::{to_micros, MeteringRule, SiteCode};

use super::{Db, DbStore};
use crate::rows::{self, site_code as parse_site_code, RuleColumns};
use crate::{ReceivedDevice, Result, StoreError};

const LINK_COLUMNS: &str = "code, name, created_at, expires_at, joined_at, revoked_at";

#[derive(sqlx::FromRow)]
struct LinkColumns {
    code: String,
    name: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    joined_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl LinkColumns {
    fn into_link(self) -> Result<SiteLink> {
        Ok(SiteLink {
            code: parse_site_code("site_links.code", self.code)?,
            name: self.name,
            created_at: self.created_at,
            expires_at: self.expires_at,
            joined_at: self.joined_at,
            revoked_at: self.revoked_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct StateColumns {
    code: String,
    name: String,
    parent: Option<String>,
    last_sync_at: Option<DateTime<Utc>>,
    caught_up_at: Option<DateTime<Utc>>,
    backlog: i64,
}

impl StateColumns {
    fn into_state(self) -> Result<SiteState> {
        Ok(SiteState {
            code: parse_site_code("sites.code", self.code)?,
            name: self.name,
            parent: (self.parent)
                .map(|p| parse_site_code("sites.parent", p))
                .transpose()?,
            last_sync_at: self.last_sync_at,
            caught_up_at: self.caught_up_at,
            backlog: self.backlog,
        })
    }
}

#[derive(sqlx::FromRow)]
struct DeviceSync {
    #[sqlx(flatten)]
    device: rows::DeviceColumns,
    sync_key: Option<String>,
    inventory_generation: i64,
}

/// A usage record with its file and user, as up-sync sends it.
#[derive(sqlx::FromRow)]
struct RecordColumns {
    time_serial: i64,
    id: i64,
    device_id: i64,
    meter_data_id: String,
    start_time: DateTime<Utc>,
    start_time_offset: i32,
    end_time: DateTime<Utc>,
    end_time_offset: i32,
    started: bool,
    still_running: bool,
    start_not_captured: bool,
    end_not_captured: bool,
    in_ts_session: bool,
    #[sqlx(flatten)]
    file: rows::FileInfoColumns,
    account: String,
    full_name: Option<String>,
}

impl RecordColumns {
    fn into_wire(self) -> (i64, i64, i64, UsageRecordV1) {
        let record = UsageRecordV1 {
            meter_data_id: self.meter_data_id,
            file: self.file.into_info(),
            user: UserRef {
                account: self.account,
                full_name: self.full_name,
            },
            start_time: self.start_time,
            start_time_offset: self.start_time_offset,
            end_time: self.end_time,
            end_time_offset: self.end_time_offset,
            started: self.started,
            still_running: self.still_running,
            start_not_captured: self.start_not_captured,
            end_not_captured: self.end_not_captured,
            in_ts_session: self.in_ts_session,
        };
        (self.time_serial, self.id, self.device_id, record)
    }
}

/// Adds or updates one copied rule, matched by its owner and its id there.
async fn upsert_copied_rule(
    tx: &mut sqlx::Transaction<'_, Db>,
    rule: &MeteringRule,
    at: DateTime<Utc>,
) -> Result<()> {
    let sql = "INSERT INTO metering_rules (name, file_name, original_file_name, file_version,
             language, product_name, comment, apply_to_child_sites, enabled, updated_at,
             site_code, origin, origin_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (site_code, origin_id) DO UPDATE SET name = excluded.name,
             file_name = excluded.file_name, original_file_name = excluded.original_file_name,
             file_version = excluded.file_version, language = excluded.language,
             product_name = excluded.product_name, comment = excluded.comment,
             apply_to_child_sites = excluded.apply_to_child_sites, enabled = excluded.enabled,
             origin = excluded.origin, updated_at = excluded.updated_at
         RETURNING *";
    super::rules::with_spec(sql, &rule.spec, at)
        .bind(rule.site_code.as_str())
        .bind(rule.origin.as_str())
        .bind(rule.id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(())
}

/// The copied rules of `owner` as stored here: (local id, id at the owner, rule).
async fn copied_rules(
    tx: &mut sqlx::Transaction<'_, Db>,
    owner: &SiteCode,
) -> Result<Vec<(Option<i64>, MeteringRule)>> {
    #[derive(sqlx::FromRow)]
    struct Copied {
        origin_id: Option<i64>,
        #[sqlx(flatten)]
        rule: RuleColumns,
    }
    let rows = sqlx::query_as::<_, Copied>("SELECT * FROM metering_rules WHERE site_code = $1")
        .bind(owner.as_str())
        .fetch_all(&mut **tx)
        .await?;
    rows.into_iter()
        .map(|r| Ok((r.origin_id, r.rule.into_rule()?)))
        .collect()
}

#[async_trait]
impl crate::HierarchyStore for DbStore {
    async fn invite_site(
        &self,
        link: &SiteLink,
        secret_hash: &str,
        audit: crate::AuditOf<'_, SiteLink>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let done = sqlx::query(
            "INSERT INTO site_links (code, name, secret_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name,
                 secret_hash = excluded.secret_hash, created_at = excluded.created_at,
                 expires_at = excluded.expires_at, joined_at = NULL, revoked_at = NULL
             WHERE site_links.joined_at IS NULL OR site_links.revoked_at IS NOT NULL",
        )
        .bind(link.code.as_str())
        .bind(&link.name)
        .bind(secret_hash)
        .bind(to_micros(link.created_at))
        .bind(to_micros(link.expires_at))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        super::audit::commit_of(tx, audit, link).await?;
        Ok(true)
    }

    async fn join_site(
        &self,
        code: &SiteCode,
        invite_hash: &str,
        credential_hash: &str,
        parent: &SiteCode,
        at: DateTime<Utc>,
    ) -> Result<Option<SiteLink>> {
        let at = to_micros(at);
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let sql = format!(
            "UPDATE site_links SET secret_hash = $1, joined_at = $2
             WHERE code = $3 AND secret_hash = $4 AND joined_at IS NULL
                 AND revoked_at IS NULL AND expires_at > $2
             RETURNING {LINK_COLUMNS}"
        );
        let row = sqlx::query_as::<_, LinkColumns>(&sql)
            .bind(credential_hash)
            .bind(at)
            .bind(code.as_str())
            .bind(invite_hash)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(link) = row.map(LinkColumns::into_link).transpose()? else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO sites (code, name, parent) VALUES ($1, $2, $3)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, parent = excluded.parent",
        )
        .bind(code.as_str())
        .bind(&link.name)
        .bind(parent.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(link))
    }

    async fn site_link_by_credential(
        &self,
        code: &SiteCode,
        hash: &str,
    ) -> Result<Option<SiteLink>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM site_links WHERE code = $1 AND secret_hash = $2
                 AND joined_at IS NOT NULL AND revoked_at IS NULL"
        );
        sqlx::query_as::<_, LinkColumns>(&sql)
            .bind(code.as_str())
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?
            .map(LinkColumns::into_link)
            .transpose()
    }

    async fn site_links(&self) -> Result<Vec<SiteLink>> {
        let sql = format!("SELECT {LINK_COLUMNS} FROM site_links ORDER BY code");
        super::all_rows(self, &sql, LinkColumns::into_link).await?
    }

    async fn revoke_site_link(
        &self,
        code: &SiteCode,
        at: DateTime<Utc>,
        audit: crate::AuditNote<'_>,
    ) -> Result<bool> {
        let query = sqlx::query(
            "UPDATE site_links SET revoked_at = $1 WHERE code = $2 AND revoked_at IS NULL",
        )
        .bind(to_micros(at))
        .bind(code.as_str());
        super::change_one(self, query, audit).await
    }

    async fn site_states(&self) -> Result<Vec<SiteState>> {
        let sql = "SELECT code, name, parent, last_sync_at, caught_up_at, backlog
                   FROM sites ORDER BY code";
        super::all_rows(self, sql, StateColumns::into_state).await?
    }

    async fn site_counts(&self) -> Result<Vec<(SiteCode, i64, i64)>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT d.site_code, COUNT(*), CAST(COALESCE(SUM(n.c), 0) AS BIGINT)
             FROM devices d LEFT JOIN (SELECT device_id, COUNT(*) AS c FROM usage_records
                 GROUP BY device_id) n ON n.device_id = d.id
             GROUP BY d.site_code ORDER BY d.site_code",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(code, devices, records)| {
                Ok((
                    parse_site_code("devices.site_code", code)?,
                    devices,
                    records,
                ))
            })
            .collect()
    }

    async fn receive_sites(&self, sites: &[SiteState]) -> Result<()> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        // Parents first, so each row's parent exists when it is written.
        let mut ordered: Vec<&SiteState> = Vec::with_capacity(sites.len());
        let mut left: Vec<&SiteState> = sites.iter().collect();
        while !left.is_empty() {
            let (ready, rest): (Vec<&SiteState>, Vec<&SiteState>) = left.iter().partition(|s| {
                !s.parent
                    .as_ref()
                    .is_some_and(|p| left.iter().any(|o| &o.code == p))
            });
            if ready.is_empty() {
                return Err(StoreError::Invalid("the sites sent form a cycle".into()));
            }
            ordered.extend(ready);
            left = rest;
        }
        for s in ordered {
            sqlx::query(
                "INSERT INTO sites (code, name, parent, last_sync_at, caught_up_at, backlog)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name,
                     parent = excluded.parent,
                     last_sync_at = COALESCE(excluded.last_sync_at, sites.last_sync_at),
                     caught_up_at = COALESCE(excluded.caught_up_at, sites.caught_up_at),
                     backlog = excluded.backlog",
            )
            .bind(s.code.as_str())
            .bind(&s.name)
            .bind(s.parent.as_ref().map(|p| p.as_str()))
            .bind(s.last_sync_at.map(to_micros))
            .bind(s.caught_up_at.map(to_micros))
            .bind(s.backlog)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn receive_user_classes(
        &self,
        child: &SiteCode,
        classes: &[tally_core::hierarchy::UserClass],
    ) -> Result<u64> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        // Every batch carries every class: only what differs from the stored rows is written,
        // or each sync would rewrite them and, through the positions' triggers on users (per
        // statement on PostgreSQL), throw away every kept position.
        let classified: Vec<(String, Option<bool>, bool, Option<String>)> = sqlx::query_as(
            "SELECT account, service_account_override, service_account, service_account_set_by
             FROM users
             WHERE service_account_override IS NOT NULL OR service_account_set_by IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await?;
        let child_code = Some(child.as_str().to_string());
        let holds = |class: &tally_core::hierarchy::UserClass| {
            classified.iter().any(|(account, over, flag, by)| {
                *account == class.account
                    && *over == Some(class.service_account)
                    && *flag == class.service_account
                    && *by == child_code
            })
        };
        for class in classes.iter().filter(|c| !holds(c)) {
            sqlx::query(
                "UPDATE users SET service_account_override = $1, service_account = $1,
                     service_account_set_by = $2
                 WHERE account = $3",
            )
            .bind(class.service_account)
            .bind(child.as_str())
            .bind(&class.account)
            .execute(&mut *tx)
            .await?;
        }
        let sent: std::collections::HashSet<&str> =
            classes.iter().map(|c| c.account.as_str()).collect();
        let mut reset = 0;
        let dropped = (classified.iter())
            .filter(|(account, _, _, by)| *by == child_code && !sent.contains(account.as_str()));
        for (account, ..) in dropped {
            reset += sqlx::query(
                "UPDATE users SET service_account_override = NULL,
                     service_account = service_account_derived, service_account_set_by = NULL
                 WHERE account = $1",
            )
            .bind(account)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(reset)
    }

    async fn record_sync(&self, code: &SiteCode, at: DateTime<Utc>, backlog: i64) -> Result<()> {
        sqlx::query(
            "UPDATE sites SET last_sync_at = $1, backlog = $2,
                 caught_up_at = CASE WHEN $2 = 0 THEN $1 ELSE caught_up_at END
             WHERE code = $3",
        )
        .bind(to_micros(at))
        .bind(backlog)
        .bind(code.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn replace_copied_rules(
        &self,
        owners: &[SiteCode],
        rules: &[MeteringRule],
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let mut changed = 0;
        for owner in owners {
            let incoming: Vec<&MeteringRule> =
                rules.iter().filter(|r| &r.site_code == owner).collect();
            let stored = copied_rules(&mut tx, owner).await?;
            for (origin, rule) in &stored {
                if !origin.is_some_and(|o| incoming.iter().any(|r| r.id == o)) {
                    sqlx::query("DELETE FROM metering_rules WHERE id = $1")
                        .bind(rule.id)
                        .execute(&mut *tx)
                        .await?;
                    changed += 1;
                }
            }
            for rule in incoming {
                let same = stored.iter().any(|(o, s)| {
                    *o == Some(rule.id) && s.spec == rule.spec && s.origin == rule.origin
                });
                if !same {
                    upsert_copied_rule(&mut tx, rule, at).await?;
                    changed += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn receive_device(&self, d: &ReceivedDevice<'_>, at: DateTime<Utc>) -> Result<i64> {
        let seen = d.last_seen.map(to_micros);
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM devices
             WHERE sync_key = $1 OR (machine_id = $2 AND sync_key IS NULL)
             ORDER BY CASE WHEN sync_key = $1 THEN 0 ELSE 1 END, id LIMIT 1",
        )
        .bind(&d.device.key)
        .bind(&d.device.machine_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(id) = found else {
            return Ok(sqlx::query_scalar(
                "INSERT INTO devices (site_code, host_name, fqdn, os, serial, machine_id,
                     sync_key, last_seen, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(d.device.site_code.as_str())
            .bind(&d.device.host_name)
            .bind(d.fqdn)
            .bind(d.os)
            .bind(d.serial)
            .bind(&d.device.machine_id)
            .bind(&d.device.key)
            .bind(seen)
            .bind(to_micros(at))
            .fetch_one(&self.pool)
            .await?);
        };
        // The most recent sighting decides the site (and the host name it goes by there).
        sqlx::query(
            "UPDATE devices SET
                 site_code = CASE WHEN last_seen IS NULL OR $1 >= last_seen
                     THEN $2 ELSE site_code END,
                 host_name = CASE WHEN last_seen IS NULL OR $1 >= last_seen
                     THEN $3 ELSE host_name END,
                 last_seen = CASE WHEN last_seen IS NULL OR $1 > last_seen
                     THEN $1 ELSE last_seen END,
                 fqdn = COALESCE($4, fqdn), os = COALESCE($5, os),
                 serial = COALESCE($6, serial), machine_id = COALESCE($7, machine_id),
                 sync_key = COALESCE(sync_key, $8)
             WHERE id = $9",
        )
        .bind(seen)
        .bind(d.device.site_code.as_str())
        .bind(&d.device.host_name)
        .bind(d.fqdn)
        .bind(d.os)
        .bind(d.serial)
        .bind(&d.device.machine_id)
        .bind(&d.device.key)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    async fn receive_agents(&self, device_id: i64, agents: &[AgentHealth]) -> Result<()> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        for a in agents {
            // No secret: an empty hash never equals a SHA-256, so this row cannot sign in.
            sqlx::query(
                "INSERT INTO agents (id, device_id, secret_hash, enrolled_at, last_heartbeat,
                     agent_version, dropped_records, revoked_at)
                 VALUES ($1, $2, '', $3, $4, $5, $6, $7)
                 ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id,
                     last_heartbeat = excluded.last_heartbeat,
                     agent_version = excluded.agent_version,
                     dropped_records = excluded.dropped_records,
                     revoked_at = excluded.revoked_at",
            )
            .bind(&a.id)
            .bind(device_id)
            .bind(to_micros(a.enrolled_at))
            .bind(a.last_heartbeat.map(to_micros))
            .bind(&a.agent_version)
            .bind(a.dropped_records)
            .bind(a.revoked.then(|| to_micros(a.enrolled_at)))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn devices_for_sync(&self, after: i64, limit: i64) -> Result<Vec<crate::DeviceForSync>> {
        let rows = sqlx::query_as::<_, DeviceSync>(
            "SELECT * FROM devices WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(crate::DeviceForSync {
                    device: r.device.into_device()?,
                    sync_key: r.sync_key,
                    inventory_generation: r.inventory_generation,
                })
            })
            .collect()
    }

    async fn usage_for_sync(&self, after: (i64, i64), limit: i64) -> Result<Vec<SyncedRecord>> {
        // Only settled serials: a write still in progress may yet commit a serial below the
        // newest one, which a watermark moved past it would never send.
        let settled = super::settled_time_serial(&self.pool).await?;
        let rows = sqlx::query_as::<_, RecordColumns>(
            "SELECT u.time_serial, u.id, u.device_id, u.meter_data_id, u.start_time,
                 u.start_time_offset, u.end_time, u.end_time_offset, u.started,
                 u.still_running, u.start_not_captured, u.end_not_captured, u.in_ts_session,
                 f.file_name, f.original_file_name, f.version, f.product_name, f.publisher,
                 f.language, s.account, s.full_name
             FROM usage_records u
             JOIN files f ON f.id = u.file_id
             JOIN users s ON s.id = u.user_id
             WHERE u.time_serial >= $1 AND (u.time_serial, u.id) > ($1, $2)
                 AND u.time_serial <= $4
             ORDER BY u.time_serial, u.id LIMIT $3",
        )
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .bind(settled)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut devices: Vec<(tally_core::Device, Option<String>)> = Vec::new();
        for row in rows {
            let (time_serial, id, device_id, record) = row.into_wire();
            if !devices.iter().any(|(d, _)| d.id == device_id) {
                devices.push(device_with_key(self, device_id).await?);
            }
            let (device, sync_key) = (devices.iter())
                .find(|(d, _)| d.id == device_id)
                .cloned()
                .expect("just read");
            out.push(SyncedRecord {
                time_serial,
                id,
                device,
                sync_key,
                record,
            });
        }
        Ok(out)
    }

    async fn usage_unsent(&self, after: (i64, i64)) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM usage_records
             WHERE time_serial >= $1 AND (time_serial, id) > ($1, $2)",
        )
        .bind(after.0)
        .bind(after.1)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn sync_value(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM sync_state WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_sync_value(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO sync_state (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sent_digests(&self) -> Result<Vec<(i64, String)>> {
        Ok(
            sqlx::query_as("SELECT device_id, digest FROM sync_sent_devices ORDER BY device_id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn set_sent_digests(&self, digests: &[(i64, String)]) -> Result<()> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        for (device, digest) in digests {
            sqlx::query(
                "INSERT INTO sync_sent_devices (device_id, digest) VALUES ($1, $2)
                 ON CONFLICT (device_id) DO UPDATE SET digest = excluded.digest",
            )
            .bind(device)
            .bind(digest)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// One device with the key it was received under, if any.
async fn device_with_key(store: &DbStore, id: i64) -> Result<(tally_core::Device, Option<String>)> {
    let row = sqlx::query_as::<_, DeviceSync>("SELECT * FROM devices WHERE id = $1")
        .bind(id)
        .fetch_one(&store.pool)
        .await?;
    Ok((row.device.into_device()?, row.sync_key))
}
