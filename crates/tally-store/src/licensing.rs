//! Licensing data: the org tree, applications and their recognition rules, licenses, usage
//! sessions, and the one-transaction import that loads them all. Shared by both backends
//! through a macro, as `shared.rs` is.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tally_core::compliance::TotalUserMetric;
use tally_core::import::Batch;
use tally_core::licenses::{Application, License};
use tally_core::OrgNode;

use crate::Result;

/// How installed software and metered usage are recognised as an application. Empty
/// patterns match anything; a rule with no software pattern recognises no installation.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow,
)]
pub struct Recognition {
    pub application_id: i64,
    /// Wildcard pattern (`*`, `?`, any case) on the installed software's name.
    pub software: String,
    pub publisher: String,
    pub version: String,
    /// A metering rule whose usage is this application's.
    pub metering_rule: String,
}

/// An application with its settings and recognition rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppRecord {
    #[serde(flatten)]
    pub application: Application,
    pub total_user_metric: TotalUserMetric,
    pub recognition: Vec<Recognition>,
}

/// A device's facts for compliance.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeviceRow {
    pub id: i64,
    pub host_name: String,
    pub org_node: Option<i64>,
    pub status: String,
    pub site_code: String,
    pub cpu_model: Option<String>,
    pub sockets: Option<i32>,
    pub cores: Option<i32>,
    pub pvu_per_core: Option<i32>,
}

/// A user's facts for compliance.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub account: String,
    pub org_node: Option<i64>,
    pub status: String,
    pub service_account: bool,
}

/// One usage session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub application_id: i64,
    pub device_id: i64,
    pub user_id: i64,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
}

/// What an import wrote, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    pub org_nodes: u64,
    pub devices: u64,
    pub users: u64,
    pub applications: u64,
    pub installations: u64,
    pub sessions: u64,
    pub licenses: u64,
    pub custom_values: u64,
    /// The ids of the licenses added, in the batch's order (for the API, which adds one).
    #[serde(skip)]
    pub license_ids: Vec<i64>,
}

/// One application's compliance figures on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Snapshot {
    pub day: NaiveDate,
    pub application_id: i64,
    pub required: i64,
    pub owned: i64,
    pub covered: i64,
    pub shortfall: i64,
    pub surplus: i64,
    pub status: String,
}

/// Whether an installation is there at the instant bound as `$1`: installed before it (or
/// since before Tally knew) and not removed by then.
pub(crate) const INSTALLED_ON: &str = "(installed_at IS NULL OR installed_at < $1) \
     AND (removed_at IS NULL OR removed_at >= $1)";

/// A device's or user's status before a change.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatusChange {
    /// `device` or `user`.
    pub subject: String,
    pub subject_id: i64,
    pub old_status: String,
}

/// Called with the rows written so far, for a progress bar.
pub type Progress<'a> = &'a (dyn Fn(u64) + Send + Sync);

#[async_trait]
pub trait Licensing: Send + Sync {
    async fn org_nodes(&self) -> Result<Vec<OrgNode>>;
    async fn applications(&self) -> Result<Vec<AppRecord>>;
    async fn licenses(&self) -> Result<Vec<License>>;
    /// Every device's compliance facts.
    async fn compliance_devices(&self) -> Result<Vec<DeviceRow>>;
    async fn compliance_users(&self) -> Result<Vec<UserRow>>;
    /// Each distinct title (name, publisher, version) installed at the instant `on`.
    async fn software_titles(&self, on: DateTime<Utc>) -> Result<Vec<(String, String, String)>>;
    /// Devices with this title installed at the instant `on`.
    async fn devices_with(&self, title: (&str, &str, &str), on: DateTime<Utc>) -> Result<Vec<i64>>;
    /// Statuses before the changes made at or after `since`, earliest change first:
    /// (subject, id, old status). The first per subject is its status just before `since`.
    async fn status_changes(&self, since: DateTime<Utc>) -> Result<Vec<StatusChange>>;
    /// One application's sessions overlapping `[from, to)`.
    async fn sessions(
        &self,
        application_id: i64,
        period: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Vec<SessionRow>>;
    async fn custom_values(&self) -> Result<Vec<(i64, Option<i64>, i64)>>;
    /// The end of the last session per application and device.
    async fn last_sessions(&self) -> Result<Vec<(i64, i64, DateTime<Utc>)>>;
    /// Replaces the day's snapshots.
    async fn put_snapshots(&self, day: NaiveDate, rows: &[Snapshot]) -> Result<()>;
    async fn snapshots(
        &self,
        application_id: Option<i64>,
        from: NaiveDate,
    ) -> Result<Vec<Snapshot>>;
    /// Names rows of an import may refer to.
    async fn import_known(&self) -> Result<tally_core::import::Known>;
    /// Loads a validated batch in one transaction: all of it or, on any error, nothing.
    /// Devices are matched by host name, users by account, org nodes and applications by
    /// name (and updated); installations by device and software name; sessions and licenses
    /// are added.
    async fn import(
        &self,
        batch: &Batch,
        site: &tally_core::SiteCode,
        at: DateTime<Utc>,
        progress: Progress<'_>,
    ) -> Result<ImportOutcome>;
    /// Deletes an application with its recognition rules, sessions, licenses and snapshots;
    /// false when there is none.
    async fn delete_application(&self, id: i64) -> Result<bool>;
    async fn delete_license(&self, id: i64) -> Result<bool>;
    /// Adds sessions derived from the agent's runs; a run already stored for the application
    /// grows to cover both. Returns the sessions written.
    async fn put_run_sessions(&self, sessions: &[tally_core::sessions::RunSession]) -> Result<u64>;
    /// Org-node rules, oldest first (the order they are tried in).
    async fn org_rules(&self) -> Result<Vec<tally_core::org::OrgRule>>;
    /// Adds a rule; `rule.id` is ignored.
    async fn add_org_rule(
        &self,
        rule: &tally_core::org::OrgRule,
    ) -> Result<tally_core::org::OrgRule>;
    async fn delete_org_rule(&self, id: i64) -> Result<bool>;
    /// Places a device or a user on a node (or none) by hand; false when there is no such one.
    async fn set_org_node(&self, target: OrgTarget, node: Option<i64>) -> Result<bool>;
}

/// What `set_org_node` places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgTarget {
    Device(i64),
    User(i64),
}

/// Rows per multi-row insert while importing.
pub(crate) const CHUNK: usize = 1000;

pub(crate) fn app_record(
    (id, name, publisher, metric, period_days, total_user_metric): (
        i64,
        String,
        String,
        String,
        Option<i32>,
        String,
    ),
    recognition: &mut HashMap<i64, Vec<Recognition>>,
) -> Result<AppRecord> {
    let metric = tally_core::Metric::parse(&metric).ok_or(crate::StoreError::Corrupt {
        column: "applications.metric",
        value: metric,
    })?;
    let total_user_metric = match total_user_metric.as_str() {
        "installation_users" => TotalUserMetric::InstallationUsers,
        "both" => TotalUserMetric::Both,
        _ => TotalUserMetric::MeteredUsers,
    };
    let metering_period = match period_days {
        Some(days) if days > 0 => tally_core::MeteringPeriod::RollingDays { days: days as u32 },
        _ => tally_core::MeteringPeriod::CurrentMonth,
    };
    Ok(AppRecord {
        application: Application {
            id,
            name,
            publisher,
            metric,
            metering_period,
        },
        total_user_metric,
        recognition: recognition.remove(&id).unwrap_or_default(),
    })
}

/// The id a name resolved to; a name the import's checks should have caught is a conflict,
/// which rolls the import back.
pub(crate) fn resolve(ids: &HashMap<String, i64>, name: &str, what: &str) -> Result<i64> {
    ids.get(name).copied().ok_or_else(|| {
        crate::StoreError::Conflict(format!(
            "the import refers to {what} {name:?}, which is neither in it nor stored; nothing was loaded"
        ))
    })
}

pub(crate) fn user_metric_name(m: Option<TotalUserMetric>) -> &'static str {
    match m.unwrap_or_default() {
        TotalUserMetric::MeteredUsers => "metered_users",
        TotalUserMetric::InstallationUsers => "installation_users",
        TotalUserMetric::Both => "both",
    }
}

macro_rules! impl_licensing {
    ($store:ty, $db:ty, $begin_write:literal) => {
        impl $store {
            /// Upserts org nodes parents first; returns name → id for every stored node.
            async fn import_org_nodes(
                tx: &mut sqlx::Transaction<'_, $db>,
                rows: &tally_core::import::Rows<tally_core::import::OrgNodeRow>,
            ) -> $crate::Result<std::collections::HashMap<String, i64>> {
                let stored: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM org_nodes")
                    .fetch_all(&mut **tx)
                    .await?;
                let mut ids: std::collections::HashMap<String, i64> =
                    stored.into_iter().map(|(id, name)| (name, id)).collect();
                let mut pending: Vec<&tally_core::import::OrgNodeRow> = rows.iter().map(|(_, r)| r).collect();
                while !pending.is_empty() {
                    let before = pending.len();
                    let mut later = Vec::new();
                    for row in pending {
                        let parent = row.parent.as_deref().filter(|p| !p.is_empty());
                        let waiting = parent.is_some_and(|p| {
                            !ids.contains_key(p) || rows.iter().any(|(_, r)| r.name == p && !ids.contains_key(&r.name))
                        });
                        if waiting {
                            later.push(row);
                            continue;
                        }
                        let id: i64 = sqlx::query_scalar(
                            "INSERT INTO org_nodes (name, parent) VALUES ($1, $2)
                             ON CONFLICT (name) DO UPDATE SET parent = excluded.parent RETURNING id",
                        )
                        .bind(&row.name)
                        .bind(parent.and_then(|p| ids.get(p).copied()))
                        .fetch_one(&mut **tx)
                        .await?;
                        ids.insert(row.name.clone(), id);
                    }
                    if later.len() == before {
                        return Err($crate::StoreError::Conflict(
                            "org nodes refer to parents that never resolve".into(),
                        ));
                    }
                    pending = later;
                }
                Ok(ids)
            }

            async fn import_devices(
                tx: &mut sqlx::Transaction<'_, $db>,
                rows: &tally_core::import::Rows<tally_core::import::DeviceRow>,
                nodes: &std::collections::HashMap<String, i64>,
                site: &tally_core::SiteCode,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<std::collections::HashMap<String, i64>> {
                let stored: Vec<(i64, String, String)> = sqlx::query_as(
                    "SELECT id, host_name, status FROM devices
                     WHERE id IN (SELECT MIN(id) FROM devices GROUP BY host_name)",
                )
                .fetch_all(&mut **tx)
                .await?;
                let was: std::collections::HashMap<i64, String> =
                    stored.iter().map(|(id, _, status)| (*id, status.clone())).collect();
                let mut ids: std::collections::HashMap<String, i64> =
                    stored.into_iter().map(|(id, host, _)| (host, id)).collect();
                let node = |n: &Option<String>| n.as_deref().and_then(|n| nodes.get(n).copied());
                let status = |s: Option<tally_core::DeviceStatus>| s.map(|s| s.as_str());
                let (old, new): (Vec<_>, Vec<_>) =
                    rows.iter().map(|(_, r)| r).partition(|r| ids.contains_key(&r.host_name));
                let changes: Vec<(i64, &str)> = old
                    .iter()
                    .filter_map(|r| {
                        let id = ids[&r.host_name];
                        let before = was[&id].as_str();
                        (status(r.status).is_some_and(|s| s != before)).then_some((id, before))
                    })
                    .collect();
                Self::record_status_changes(tx, "device", &changes, at).await?;
                for r in old {
                    sqlx::query(
                        "UPDATE devices SET org_node = COALESCE($1, org_node),
                             status = COALESCE($2, status), sockets = COALESCE($3, sockets),
                             cores = COALESCE($4, cores), pvu_per_core = COALESCE($5, pvu_per_core),
                             os = COALESCE($6, os), serial = COALESCE($7, serial)
                         WHERE id = $8",
                    )
                    .bind(node(&r.org_node))
                    .bind(status(r.status))
                    .bind(r.sockets)
                    .bind(r.cores)
                    .bind(r.pvu_per_core)
                    .bind(&r.os)
                    .bind(&r.serial)
                    .bind(ids[&r.host_name])
                    .execute(&mut **tx)
                    .await?;
                }
                let at = tally_core::to_micros(at);
                for chunk in new.chunks($crate::licensing::CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO devices (site_code, host_name, org_node, status, sockets, cores,
                             pvu_per_core, os, serial, created_at) ",
                    );
                    insert.push_values(chunk, |mut b, r| {
                        b.push_bind(site.as_str())
                            .push_bind(&r.host_name)
                            .push_bind(node(&r.org_node))
                            .push_bind(status(r.status).unwrap_or("active"))
                            .push_bind(r.sockets)
                            .push_bind(r.cores)
                            .push_bind(r.pvu_per_core)
                            .push_bind(&r.os)
                            .push_bind(&r.serial)
                            .push_bind(at);
                    });
                    insert.push(" RETURNING id, host_name");
                    let created: Vec<(i64, String)> =
                        insert.build_query_as().fetch_all(&mut **tx).await?;
                    ids.extend(created.into_iter().map(|(id, host)| (host, id)));
                }
                Ok(ids)
            }

            /// Keeps each subject's status before this change, for compliance on past days.
            async fn record_status_changes(
                tx: &mut sqlx::Transaction<'_, $db>,
                subject: &str,
                changes: &[(i64, &str)],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                for chunk in changes.chunks($crate::licensing::CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO status_changes (subject, subject_id, old_status, changed_at) ",
                    );
                    insert.push_values(chunk, |mut b, (id, old)| {
                        b.push_bind(subject)
                            .push_bind(*id)
                            .push_bind(*old)
                            .push_bind(tally_core::to_micros(at));
                    });
                    insert.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            async fn import_users(
                tx: &mut sqlx::Transaction<'_, $db>,
                rows: &tally_core::import::Rows<tally_core::import::UserRow>,
                nodes: &std::collections::HashMap<String, i64>,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<std::collections::HashMap<String, i64>> {
                let stored: Vec<(i64, String, String)> =
                    sqlx::query_as("SELECT id, account, status FROM users")
                        .fetch_all(&mut **tx)
                        .await?;
                let mut latest = std::collections::HashMap::new();
                for (_, r) in rows {
                    latest.insert(
                        r.account.as_str(),
                        r.status.unwrap_or(tally_core::UserStatus::Active).as_str(),
                    );
                }
                let changes: Vec<(i64, &str)> = stored
                    .iter()
                    .filter(|(_, account, before)| {
                        latest.get(account.as_str()).is_some_and(|now| now != before)
                    })
                    .map(|(id, _, before)| (*id, before.as_str()))
                    .collect();
                Self::record_status_changes(tx, "user", &changes, at).await?;
                for chunk in rows.chunks($crate::licensing::CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO users (account, full_name, status, service_account, org_node) ",
                    );
                    insert.push_values(chunk, |mut b, (_, r)| {
                        b.push_bind(&r.account)
                            .push_bind(&r.full_name)
                            .push_bind(r.status.unwrap_or(tally_core::UserStatus::Active).as_str())
                            .push_bind(r.service_account.unwrap_or(false))
                            .push_bind(r.org_node.as_deref().and_then(|n| nodes.get(n).copied()));
                    });
                    insert.push(
                        " ON CONFLICT (account) DO UPDATE SET
                             full_name = COALESCE(excluded.full_name, users.full_name),
                             status = excluded.status, service_account = excluded.service_account,
                             org_node = COALESCE(excluded.org_node, users.org_node)",
                    );
                    insert.build().execute(&mut **tx).await?;
                }
                let stored: Vec<(i64, String)> = sqlx::query_as("SELECT id, account FROM users")
                    .fetch_all(&mut **tx)
                    .await?;
                Ok(stored.into_iter().map(|(id, account)| (account, id)).collect())
            }

            async fn import_applications(
                tx: &mut sqlx::Transaction<'_, $db>,
                rows: &tally_core::import::Rows<tally_core::import::ApplicationRow>,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<std::collections::HashMap<String, i64>> {
                for (_, r) in rows {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO applications (name, publisher, metric, period_days,
                             total_user_metric, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (name) DO UPDATE SET publisher = excluded.publisher,
                             metric = excluded.metric, period_days = excluded.period_days,
                             total_user_metric = excluded.total_user_metric
                         RETURNING id",
                    )
                    .bind(&r.name)
                    .bind(&r.publisher)
                    .bind(r.metric.as_str())
                    .bind(r.period_days.map(|d| d as i32))
                    .bind($crate::licensing::user_metric_name(r.total_user_metric))
                    .bind(tally_core::to_micros(at))
                    .fetch_one(&mut **tx)
                    .await?;
                    let software = r.software.clone().unwrap_or_default();
                    let rule = r.metering_rule.clone().unwrap_or_default();
                    if software.is_empty() && rule.is_empty() {
                        continue;
                    }
                    sqlx::query("DELETE FROM recognition_rules WHERE application_id = $1")
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO recognition_rules (application_id, software, publisher, version,
                             metering_rule) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(id)
                    .bind(software)
                    .bind(r.software_publisher.clone().unwrap_or_default())
                    .bind(r.software_version.clone().unwrap_or_default())
                    .bind(rule)
                    .execute(&mut **tx)
                    .await?;
                }
                let stored: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM applications")
                    .fetch_all(&mut **tx)
                    .await?;
                Ok(stored.into_iter().map(|(id, name)| (name, id)).collect())
            }

            async fn import_installations(
                tx: &mut sqlx::Transaction<'_, $db>,
                rows: &tally_core::import::Rows<tally_core::import::InstallationRow>,
                devices: &std::collections::HashMap<String, i64>,
                progress: $crate::licensing::Progress<'_>,
                done: &mut u64,
            ) -> $crate::Result<u64> {
                // The last row for a (device, software) wins; one statement may not touch a
                // row twice.
                let mut latest = std::collections::HashMap::new();
                for (_, r) in rows {
                    let device = $crate::licensing::resolve(devices, &r.host_name, "device")?;
                    latest.insert((device, &*r.software), r);
                }
                let rows: Vec<_> = latest.into_iter().collect();
                for chunk in rows.chunks($crate::licensing::CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO installed_software (device_id, name, version, publisher,
                             installed_at) ",
                    );
                    insert.push_values(chunk, |mut b, ((device, name), r)| {
                        let installed = r.installed_on.map(|d| {
                            tally_core::to_micros(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
                        });
                        b.push_bind(*device)
                            .push_bind(*name)
                            .push_bind(&*r.version)
                            .push_bind(&*r.publisher)
                            .push_bind(installed);
                    });
                    insert.push(
                        " ON CONFLICT (device_id, name) WHERE removed_at IS NULL
                         DO UPDATE SET version = excluded.version, publisher = excluded.publisher,
                             installed_at = COALESCE(excluded.installed_at, installed_software.installed_at)",
                    );
                    insert.build().execute(&mut **tx).await?;
                    *done += chunk.len() as u64;
                    progress(*done);
                }
                Ok(rows.len() as u64)
            }

            async fn import_sessions(
                tx: &mut sqlx::Transaction<'_, $db>,
                rows: &tally_core::import::Rows<tally_core::import::SessionRow>,
                ids: (
                    &std::collections::HashMap<String, i64>,
                    &std::collections::HashMap<String, i64>,
                    &std::collections::HashMap<String, i64>,
                ),
                progress: $crate::licensing::Progress<'_>,
                done: &mut u64,
            ) -> $crate::Result<()> {
                let (apps, devices, users) = ids;
                for chunk in rows.chunks($crate::licensing::CHUNK) {
                    let mut resolved = Vec::with_capacity(chunk.len());
                    for (_, r) in chunk {
                        resolved.push((
                            $crate::licensing::resolve(apps, &r.application, "application")?,
                            $crate::licensing::resolve(devices, &r.host_name, "device")?,
                            $crate::licensing::resolve(users, &r.account, "user")?,
                            tally_core::to_micros(r.start),
                            tally_core::to_micros(r.end),
                        ));
                    }
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO usage_sessions (application_id, device_id, user_id, start_time,
                             end_time) ",
                    );
                    insert.push_values(resolved, |mut b, (app, device, user, start, end)| {
                        b.push_bind(app)
                            .push_bind(device)
                            .push_bind(user)
                            .push_bind(start)
                            .push_bind(end);
                    });
                    insert.build().execute(&mut **tx).await?;
                    *done += chunk.len() as u64;
                    progress(*done);
                }
                Ok(())
            }

            /// Each row replaces the stored value for its application and node.
            async fn import_custom_values(
                tx: &mut sqlx::Transaction<'_, $db>,
                rows: &tally_core::import::Rows<tally_core::import::CustomValueRow>,
                ids: [&std::collections::HashMap<String, i64>; 2],
            ) -> $crate::Result<()> {
                let [apps, nodes] = ids;
                for (_, r) in rows {
                    let app = $crate::licensing::resolve(apps, &r.application, "application")?;
                    let node = match r.org_node.as_deref().filter(|n| !n.is_empty()) {
                        Some(n) => Some($crate::licensing::resolve(nodes, n, "org node")?),
                        None => None,
                    };
                    sqlx::query(
                        "DELETE FROM custom_values
                         WHERE application_id = $1 AND org_node IS NOT DISTINCT FROM $2",
                    )
                    .bind(app)
                    .bind(node)
                    .execute(&mut **tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO custom_values (application_id, org_node, quantity)
                         VALUES ($1, $2, $3)",
                    )
                    .bind(app)
                    .bind(node)
                    .bind(r.quantity)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }

            async fn import_licenses(
                tx: &mut sqlx::Transaction<'_, $db>,
                rows: &tally_core::import::Rows<tally_core::import::LicenseRow>,
                ids: [&std::collections::HashMap<String, i64>; 4],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Vec<i64>> {
                let [apps, nodes, devices, users] = ids;
                let mut created = Vec::with_capacity(rows.len());
                for (_, r) in rows {
                    let target = match r.assigned_to.as_deref().filter(|t| !t.is_empty()) {
                        None => None,
                        Some(t) => Some(match r.assignment_type {
                            tally_core::AssignmentType::Computer => {
                                $crate::licensing::resolve(devices, t, "computer")?
                            }
                            tally_core::AssignmentType::User => $crate::licensing::resolve(users, t, "user")?,
                            _ => $crate::licensing::resolve(nodes, t, "org node")?,
                        }),
                    };
                    let id = sqlx::query(
                        "INSERT INTO licenses (application_id, metric, quantity, assignment_type,
                             assigned_to, purchase_date, valid_from, valid_until, maintenance_until,
                             unit_cost_minor, currency, vendor, order_reference, notes, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                         RETURNING id",
                    )
                    .bind($crate::licensing::resolve(apps, &r.application, "application")?)
                    .bind(r.metric.as_str())
                    .bind(r.quantity)
                    .bind(r.assignment_type.as_str())
                    .bind(target)
                    .bind(r.purchase_date)
                    .bind(r.valid_from)
                    .bind(r.valid_until)
                    .bind(r.maintenance_until)
                    .bind(r.unit_cost.as_deref().and_then(tally_core::import::parse_cost))
                    .bind(&r.currency)
                    .bind(&r.vendor)
                    .bind(&r.order_reference)
                    .bind(&r.notes)
                    .bind(tally_core::to_micros(at))
                    .fetch_one(&mut **tx)
                    .await?;
                    created.push(sqlx::Row::try_get(&id, 0)?);
                }
                Ok(created)
            }
        }

        #[async_trait::async_trait]
        impl $crate::licensing::Licensing for $store {
            async fn org_nodes(&self) -> $crate::Result<Vec<tally_core::OrgNode>> {
                let rows: Vec<(i64, String, Option<i64>)> =
                    sqlx::query_as("SELECT id, name, parent FROM org_nodes ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, name, parent)| tally_core::OrgNode { id, name, parent })
                    .collect())
            }

            async fn applications(&self) -> $crate::Result<Vec<$crate::licensing::AppRecord>> {
                let rules: Vec<$crate::licensing::Recognition> = sqlx::query_as(
                    "SELECT application_id, software, publisher, version, metering_rule
                     FROM recognition_rules ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut by_app: std::collections::HashMap<i64, Vec<_>> = Default::default();
                for r in rules {
                    by_app.entry(r.application_id).or_default().push(r);
                }
                let apps: Vec<(i64, String, String, String, Option<i32>, String)> = sqlx::query_as(
                    "SELECT id, name, publisher, metric, period_days, total_user_metric
                     FROM applications ORDER BY name",
                )
                .fetch_all(&self.pool)
                .await?;
                apps.into_iter()
                    .map(|a| $crate::licensing::app_record(a, &mut by_app))
                    .collect()
            }

            async fn licenses(&self) -> $crate::Result<Vec<tally_core::License>> {
                let rows: Vec<$crate::rows::LicenseRow> =
                    sqlx::query_as("SELECT * FROM licenses ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn compliance_devices(&self) -> $crate::Result<Vec<$crate::licensing::DeviceRow>> {
                Ok(sqlx::query_as(
                    "SELECT id, host_name, org_node, status, site_code, cpu_model, sockets, cores, pvu_per_core
                     FROM devices",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn compliance_users(&self) -> $crate::Result<Vec<$crate::licensing::UserRow>> {
                Ok(sqlx::query_as("SELECT id, account, org_node, status, service_account FROM users")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn sessions(
                &self,
                application_id: i64,
                period: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
            ) -> $crate::Result<Vec<$crate::licensing::SessionRow>> {
                self.application_sessions(application_id, period).await
            }

            async fn software_titles(
                &self,
                on: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Vec<(String, String, String)>> {
                Ok(sqlx::query_as(&format!(
                    "SELECT DISTINCT name, publisher, version FROM installed_software WHERE {}",
                    $crate::licensing::INSTALLED_ON
                ))
                .bind(tally_core::to_micros(on))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn devices_with(
                &self,
                title: (&str, &str, &str),
                on: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Vec<i64>> {
                self.title_devices(title, on).await
            }

            async fn status_changes(
                &self,
                since: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Vec<$crate::licensing::StatusChange>> {
                Ok(sqlx::query_as(
                    "SELECT subject, subject_id, old_status FROM status_changes
                     WHERE changed_at >= $1 ORDER BY changed_at",
                )
                .bind(tally_core::to_micros(since))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn custom_values(&self) -> $crate::Result<Vec<(i64, Option<i64>, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT application_id, org_node, quantity FROM custom_values ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn last_sessions(
                &self,
            ) -> $crate::Result<Vec<(i64, i64, chrono::DateTime<chrono::Utc>)>> {
                Ok(sqlx::query_as(
                    "SELECT application_id, device_id, MAX(end_time) FROM usage_sessions
                     GROUP BY application_id, device_id",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn put_snapshots(
                &self,
                day: chrono::NaiveDate,
                rows: &[$crate::licensing::Snapshot],
            ) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM compliance_snapshots WHERE day = $1")
                    .bind(day)
                    .execute(&mut *tx)
                    .await?;
                for chunk in rows.chunks($crate::licensing::CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO compliance_snapshots (day, application_id, required, owned,
                             covered, shortfall, surplus, status) ",
                    );
                    insert.push_values(chunk, |mut b, s| {
                        b.push_bind(day)
                            .push_bind(s.application_id)
                            .push_bind(s.required)
                            .push_bind(s.owned)
                            .push_bind(s.covered)
                            .push_bind(s.shortfall)
                            .push_bind(s.surplus)
                            .push_bind(&s.status);
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn snapshots(
                &self,
                application_id: Option<i64>,
                from: chrono::NaiveDate,
            ) -> $crate::Result<Vec<$crate::licensing::Snapshot>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM compliance_snapshots
                     WHERE day >= $1 AND ($2 IS NULL OR application_id = $2)
                     ORDER BY day, application_id",
                )
                .bind(from)
                .bind(application_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn import_known(&self) -> $crate::Result<tally_core::import::Known> {
                let names = |sql: &'static str| {
                    let pool = &self.pool;
                    async move {
                        let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(pool).await?;
                        Ok::<_, sqlx::Error>(rows.into_iter().map(|(n,)| n).collect())
                    }
                };
                let apps: Vec<(String, String)> =
                    sqlx::query_as("SELECT name, metric FROM applications")
                        .fetch_all(&self.pool)
                        .await?;
                Ok(tally_core::import::Known {
                    org_nodes: names("SELECT name FROM org_nodes").await?,
                    host_names: names("SELECT DISTINCT host_name FROM devices").await?,
                    accounts: names("SELECT account FROM users").await?,
                    rules: names("SELECT name FROM metering_rules").await?,
                    applications: apps
                        .into_iter()
                        .filter_map(|(n, m)| Some((n, tally_core::Metric::parse(&m)?)))
                        .collect(),
                })
            }

            async fn import(
                &self,
                batch: &tally_core::import::Batch,
                site: &tally_core::SiteCode,
                at: chrono::DateTime<chrono::Utc>,
                progress: $crate::licensing::Progress<'_>,
            ) -> $crate::Result<$crate::licensing::ImportOutcome> {
                // Takes the write lock at the start: the import reads names before it writes,
                // and on SQLite a read transaction that later writes fails if another
                // connection wrote in between.
                let mut tx = self.pool.begin_with($begin_write).await?;
                let mut done = 0;
                let nodes = Self::import_org_nodes(&mut tx, &batch.org_nodes).await?;
                let devices = Self::import_devices(&mut tx, &batch.devices, &nodes, site, at).await?;
                let users = Self::import_users(&mut tx, &batch.users, &nodes, at).await?;
                let apps = Self::import_applications(&mut tx, &batch.applications, at).await?;
                done += (batch.org_nodes.len() + batch.devices.len() + batch.users.len()
                    + batch.applications.len()) as u64;
                progress(done);
                let installations =
                    Self::import_installations(&mut tx, &batch.installations, &devices, progress, &mut done)
                        .await?;
                Self::import_sessions(&mut tx, &batch.sessions, (&apps, &devices, &users), progress, &mut done)
                    .await?;
                let license_ids =
                    Self::import_licenses(&mut tx, &batch.licenses, [&apps, &nodes, &devices, &users], at)
                        .await?;
                Self::import_custom_values(&mut tx, &batch.custom_values, [&apps, &nodes]).await?;
                tx.commit().await?;
                progress(done + (batch.licenses.len() + batch.custom_values.len()) as u64);
                Ok($crate::licensing::ImportOutcome {
                    org_nodes: batch.org_nodes.len() as u64,
                    devices: batch.devices.len() as u64,
                    users: batch.users.len() as u64,
                    applications: batch.applications.len() as u64,
                    installations,
                    sessions: batch.sessions.len() as u64,
                    licenses: batch.licenses.len() as u64,
                    custom_values: batch.custom_values.len() as u64,
                    license_ids,
                })
            }

            async fn delete_application(&self, id: i64) -> $crate::Result<bool> {
                let done = sqlx::query("DELETE FROM applications WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn put_run_sessions(
                &self,
                sessions: &[tally_core::sessions::RunSession],
            ) -> $crate::Result<u64> {
                let mut tx = self.pool.begin().await?;
                for chunk in sessions.chunks($crate::licensing::CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO usage_sessions (application_id, meter_data_id, device_id,
                             user_id, start_time, end_time) ",
                    );
                    insert.push_values(chunk, |mut b, s| {
                        b.push_bind(s.application_id)
                            .push_bind(&s.meter_data_id)
                            .push_bind(s.device_id)
                            .push_bind(s.user_id)
                            .push_bind(tally_core::to_micros(s.start))
                            .push_bind(tally_core::to_micros(s.end));
                    });
                    insert.push(
                        " ON CONFLICT (application_id, meter_data_id) WHERE meter_data_id IS NOT NULL
                         DO UPDATE SET
                             start_time = CASE WHEN excluded.start_time < usage_sessions.start_time
                                 THEN excluded.start_time ELSE usage_sessions.start_time END,
                             end_time = CASE WHEN excluded.end_time > usage_sessions.end_time
                                 THEN excluded.end_time ELSE usage_sessions.end_time END",
                    );
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(sessions.len() as u64)
            }

            async fn org_rules(&self) -> $crate::Result<Vec<tally_core::org::OrgRule>> {
                let rows: Vec<(i64, i64, Option<String>, Option<String>, Option<String>)> =
                    sqlx::query_as("SELECT id, org_node, site, host_name, account FROM org_rules ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, org_node, site, host_name, account)| tally_core::org::OrgRule {
                        id,
                        org_node,
                        site,
                        host_name,
                        account,
                    })
                    .collect())
            }

            async fn add_org_rule(
                &self,
                rule: &tally_core::org::OrgRule,
            ) -> $crate::Result<tally_core::org::OrgRule> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO org_rules (org_node, site, host_name, account)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(rule.org_node)
                .bind(&rule.site)
                .bind(&rule.host_name)
                .bind(&rule.account)
                .fetch_one(&self.pool)
                .await?;
                Ok(tally_core::org::OrgRule { id, ..rule.clone() })
            }

            async fn delete_org_rule(&self, id: i64) -> $crate::Result<bool> {
                let done = sqlx::query("DELETE FROM org_rules WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn set_org_node(
                &self,
                target: $crate::licensing::OrgTarget,
                node: Option<i64>,
            ) -> $crate::Result<bool> {
                let (sql, id) = match target {
                    $crate::licensing::OrgTarget::Device(id) => {
                        ("UPDATE devices SET org_node = $1 WHERE id = $2", id)
                    }
                    $crate::licensing::OrgTarget::User(id) => {
                        ("UPDATE users SET org_node = $1 WHERE id = $2", id)
                    }
                };
                let done = sqlx::query(sql).bind(node).bind(id).execute(&self.pool).await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_license(&self, id: i64) -> $crate::Result<bool> {
                let done = sqlx::query("DELETE FROM licenses WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

pub(crate) use impl_licensing;
