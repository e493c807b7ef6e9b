//! Row shapes as both backends return them (`…Columns`, private to the store), and their
//! conversion into domain values: each table's columns become its tally-core type here and
//! nowhere else. `FromRow` derives are generic over the row type, so one struct serves SQLite
//! and PostgreSQL. Usage records have no mirror struct: `queries/usage.rs` reads their columns
//! straight into tally-core's one usage model.

mod licensing;
mod summaries;

pub(crate) use licensing::*;
pub(crate) use summaries::*;

use chrono::{DateTime, Utc};
use tally_core::agents::{Agent, EnrollmentToken};
use tally_core::file::{FileInfo, StoredFile};
use tally_core::operators::{AuditEntry, OperatorToken, Role};
use tally_core::rules::{MeteringRule, RuleOrigin, RuleSpec};
use tally_core::{Device, DeviceStatus, Site, SiteCode, User, UserStatus};

use crate::{Result, StoreError};

/// Rows per multi-row INSERT: 14 parameters each stays under SQLite's 32,766-parameter limit.
pub(crate) const INSERT_CHUNK: usize = 1000;

/// Creates a device; shared by direct creation and enrolment (which gives a machine-id, $7).
pub(crate) const INSERT_DEVICE: &str =
    "INSERT INTO devices (site_code, host_name, fqdn, os, serial, created_at, last_seen,
         machine_id)
     VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING *";

pub(crate) fn site_code(column: &'static str, value: String) -> Result<SiteCode> {
    SiteCode::parse(&value).map_err(|_| StoreError::Corrupt { column, value })
}

fn parsed<T>(column: &'static str, value: String, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(&value).ok_or(StoreError::Corrupt { column, value })
}

#[derive(sqlx::FromRow)]
pub(crate) struct SiteColumns {
    code: String,
    name: String,
    alias: Option<String>,
    parent: Option<String>,
}

impl SiteColumns {
    pub fn into_site(self) -> Result<Site> {
        Ok(Site {
            code: site_code("sites.code", self.code)?,
            name: self.name,
            alias: self.alias,
            parent: self
                .parent
                .map(|p| site_code("sites.parent", p))
                .transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeviceColumns {
    pub(crate) id: i64,
    site_code: String,
    host_name: String,
    fqdn: Option<String>,
    os: Option<String>,
    serial: Option<String>,
    machine_id: Option<String>,
    cpu_model: Option<String>,
    sockets: Option<i32>,
    cores: Option<i32>,
    threads: Option<i32>,
    memory_bytes: Option<i64>,
    pvu_per_core: Option<i32>,
    is_virtual: bool,
    status: String,
    org_node: Option<i64>,
    last_seen: Option<DateTime<Utc>>,
}

impl DeviceColumns {
    pub fn into_device(self) -> Result<Device> {
        Ok(Device {
            id: self.id,
            site_code: site_code("devices.site_code", self.site_code)?,
            host_name: self.host_name,
            fqdn: self.fqdn,
            os: self.os,
            serial: self.serial,
            machine_id: self.machine_id,
            cpu_model: self.cpu_model,
            sockets: self.sockets,
            cores: self.cores,
            threads: self.threads,
            memory_bytes: self.memory_bytes,
            pvu_per_core: self.pvu_per_core,
            is_virtual: self.is_virtual,
            status: parsed("devices.status", self.status, DeviceStatus::parse)?,
            org_node: self.org_node,
            last_seen: self.last_seen,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserColumns {
    pub(crate) id: i64,
    account: String,
    full_name: Option<String>,
    service_account: bool,
    service_account_reason: Option<String>,
    service_account_override: Option<bool>,
    status: String,
    org_node: Option<i64>,
}

impl UserColumns {
    pub fn into_user(self) -> Result<User> {
        Ok(User {
            id: self.id,
            account: self.account,
            full_name: self.full_name,
            service_account: self.service_account,
            service_account_reason: self.service_account_reason,
            service_account_set_by_admin: self.service_account_override,
            status: parsed("users.status", self.status, UserStatus::parse)?,
            org_node: self.org_node,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct FileColumns {
    id: i64,
    #[sqlx(flatten)]
    info: FileInfoColumns,
}

impl FileColumns {
    pub fn into_file(self) -> StoredFile {
        StoredFile {
            id: self.id,
            info: self.info.into_info(),
        }
    }
}

/// A file's identifying columns, as `files` names them: read alone (a stored file) or
/// alongside a usage record's (up-sync sends the file, not its id).
#[derive(sqlx::FromRow)]
pub(crate) struct FileInfoColumns {
    file_name: String,
    original_file_name: String,
    version: String,
    product_name: String,
    publisher: String,
    language: i32,
}

impl FileInfoColumns {
    pub fn into_info(self) -> FileInfo {
        FileInfo {
            file_name: self.file_name,
            original_file_name: self.original_file_name,
            version: self.version,
            product_name: self.product_name,
            publisher: self.publisher,
            language: self.language,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RuleColumns {
    id: i64,
    site_code: String,
    name: String,
    file_name: String,
    original_file_name: String,
    file_version: String,
    language: i32,
    product_name: String,
    comment: String,
    apply_to_child_sites: bool,
    enabled: bool,
    origin: String,
    updated_at: DateTime<Utc>,
}

impl RuleColumns {
    pub fn into_rule(self) -> Result<MeteringRule> {
        Ok(MeteringRule {
            id: self.id,
            spec: RuleSpec {
                name: self.name,
                file_name: self.file_name,
                original_file_name: self.original_file_name,
                file_version: self.file_version,
                language: self.language,
                product_name: self.product_name,
                comment: self.comment,
                apply_to_child_sites: self.apply_to_child_sites,
                enabled: self.enabled,
            },
            site_code: site_code("metering_rules.site_code", self.site_code)?,
            origin: parsed("metering_rules.origin", self.origin, RuleOrigin::parse)?,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TokenColumns {
    id: i64,
    name: String,
    role: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TokenColumns {
    pub fn into_token(self) -> Result<OperatorToken> {
        Ok(OperatorToken {
            id: self.id,
            name: self.name,
            role: parsed("operator_tokens.role", self.role, Role::parse)?,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditColumns {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    target: String,
    detail: String,
}

impl AuditColumns {
    pub fn into_entry(self) -> (i64, AuditEntry) {
        (
            self.id,
            AuditEntry {
                at: self.at,
                actor: self.actor,
                action: self.action,
                target: self.target,
                detail: self.detail,
            },
        )
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EnrollmentTokenColumns {
    id: i64,
    site_code: String,
    name: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    max_uses: Option<i32>,
    uses: i32,
    revoked_at: Option<DateTime<Utc>>,
}

impl EnrollmentTokenColumns {
    pub fn into_token(self) -> Result<EnrollmentToken> {
        Ok(EnrollmentToken {
            id: self.id,
            site_code: site_code("enrollment_tokens.site_code", self.site_code)?,
            name: self.name,
            created_at: self.created_at,
            expires_at: self.expires_at,
            max_uses: self.max_uses,
            uses: self.uses,
            revoked_at: self.revoked_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AgentColumns {
    id: String,
    device_id: i64,
    secret_hash: String,
    enrolled_at: DateTime<Utc>,
    last_heartbeat: Option<DateTime<Utc>>,
    agent_version: Option<String>,
    dropped_records: i64,
    revoked_at: Option<DateTime<Utc>>,
}

impl AgentColumns {
    pub fn into_agent(self) -> (Agent, String) {
        (
            Agent {
                id: self.id,
                device_id: self.device_id,
                enrolled_at: self.enrolled_at,
                last_heartbeat: self.last_heartbeat,
                agent_version: self.agent_version,
                dropped_records: self.dropped_records,
                revoked_at: self.revoked_at,
            },
            self.secret_hash,
        )
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct HourColumns {
    rule_id: i64,
    hour: DateTime<Utc>,
    distinct_users: i64,
    distinct_devices: i64,
    distinct_ts_users: i64,
    usage_ms: i64,
    peak_concurrent_runs: i64,
    peak_concurrent_users: i64,
}

impl From<HourColumns> for tally_core::summary::FileUsageHour {
    fn from(r: HourColumns) -> Self {
        Self {
            rule_id: r.rule_id,
            hour: r.hour,
            distinct_users: r.distinct_users,
            distinct_devices: r.distinct_devices,
            distinct_ts_users: r.distinct_ts_users,
            usage_ms: r.usage_ms,
            peak_concurrent_runs: r.peak_concurrent_runs,
            peak_concurrent_users: r.peak_concurrent_users,
        }
    }
}

/// A monthly row with the names of its rule, device and user.
#[derive(sqlx::FromRow)]
pub(crate) struct NamedMonthColumns {
    #[sqlx(flatten)]
    month: MonthColumns,
    rule_name: Option<String>,
    host_name: Option<String>,
    account: Option<String>,
}

impl From<NamedMonthColumns>
    for (
        tally_core::summary::MonthKey,
        tally_core::summary::MonthlyUsage,
        crate::MonthNames,
    )
{
    fn from(r: NamedMonthColumns) -> Self {
        let (key, usage) = r.month.into();
        let names = crate::MonthNames {
            rule: r.rule_name,
            host_name: r.host_name,
            account: r.account,
        };
        (key, usage, names)
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MonthColumns {
    rule_id: i64,
    device_id: i64,
    user_id: i64,
    month: i32,
    runs: i64,
    usage_ms: i64,
    last_used: DateTime<Utc>,
}

impl From<MonthColumns>
    for (
        tally_core::summary::MonthKey,
        tally_core::summary::MonthlyUsage,
    )
{
    fn from(r: MonthColumns) -> Self {
        (
            tally_core::summary::MonthKey {
                rule_id: r.rule_id,
                device_id: r.device_id,
                user_id: r.user_id,
                month: r.month,
            },
            tally_core::summary::MonthlyUsage {
                runs: r.runs,
                usage_ms: r.usage_ms,
                last_used: r.last_used,
            },
        )
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TaskColumns {
    name: String,
    enabled: bool,
    every_secs: i64,
    age_days: Option<i32>,
    last_run_at: Option<DateTime<Utc>>,
    last_duration_ms: Option<i64>,
    last_rows: Option<i64>,
    watermark: i64,
    last_error: Option<String>,
}

impl From<TaskColumns> for tally_core::tasks::TaskState {
    fn from(r: TaskColumns) -> Self {
        Self {
            name: r.name,
            enabled: r.enabled,
            every_secs: r.every_secs,
            age_days: r.age_days,
            last_run_at: r.last_run_at,
            last_duration_ms: r.last_duration_ms,
            last_rows: r.last_rows,
            watermark: r.watermark,
            last_error: r.last_error,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct LicenseColumns {
    pub(crate) id: i64,
    application_id: i64,
    metric: String,
    quantity: i64,
    assignment_type: String,
    assigned_to: Option<i64>,
    purchase_date: Option<chrono::NaiveDate>,
    valid_from: Option<chrono::NaiveDate>,
    valid_until: Option<chrono::NaiveDate>,
    maintenance_until: Option<chrono::NaiveDate>,
    unit_cost_minor: Option<i64>,
    currency: Option<String>,
    vendor: Option<String>,
    order_reference: Option<String>,
    notes: Option<String>,
    created_at: DateTime<Utc>,
}

impl TryFrom<LicenseColumns> for tally_core::License {
    type Error = StoreError;
    fn try_from(r: LicenseColumns) -> Result<Self> {
        Ok(tally_core::License {
            id: r.id,
            application_id: r.application_id,
            metric: parsed("licenses.metric", r.metric, tally_core::Metric::parse)?,
            quantity: r.quantity,
            assignment_type: parsed(
                "licenses.assignment_type",
                r.assignment_type,
                tally_core::AssignmentType::parse,
            )?,
            assigned_to: r.assigned_to,
            purchase_date: r.purchase_date,
            valid_from: r.valid_from,
            valid_until: r.valid_until,
            maintenance_until: r.maintenance_until,
            unit_cost_minor: r.unit_cost_minor,
            currency: r.currency,
            vendor: r.vendor,
            order_reference: r.order_reference,
            notes: r.notes,
            created_at: r.created_at,
        })
    }
}
