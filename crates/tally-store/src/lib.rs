//! Tally's storage: one trait, [`Store`], implemented on SQLite (embedded, the default) and on
//! PostgreSQL (large sites, several stateless server replicas).
//!
//! The two implementations share their query code (see `shared.rs`): sqlx's query builder is
//! generic over the database, and the SQL used is the common subset both engines accept
//! (`$n` parameters, `ON CONFLICT`, `RETURNING`). What differs — connecting, pragmas,
//! migrations, partitioning — lives in each backend's module. Migrations are kept per backend in
//! `migrations/<backend>/` and are never edited once released.

mod error;
pub mod export;
pub mod licensing;
mod postgres;
mod rows;
mod schema;
mod shared;
mod sqlite;
mod task_lock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::agents::{Agent, EnrollmentToken};
use tally_core::device::NewDevice;
use tally_core::file::{FileInfo, StoredFile};
use tally_core::operators::{AuditEntry, OperatorToken, Role};
use tally_core::rules::{MeteringRule, RuleOrigin, RuleSpec};
use tally_core::{Device, Site, SiteCode, UsageRecord, User};

pub use error::StoreError;
pub use licensing::{
    AppRecord, ImportOutcome, Licensing, OrgTarget, Recognition, Snapshot, StatusChange,
};
pub use postgres::PgStore;
pub use schema::{migrator_up_to, SchemaVersion};
pub use sqlite::SqliteStore;
pub use task_lock::TaskLock;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Keyset pagination: rows with an id greater than `after`, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub after: i64,
    pub limit: i64,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            after: 0,
            limit: 100,
        }
    }
}

/// A usage record ready to store: dimensions already resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUsageRecord {
    pub meter_data_id: String,
    pub device_id: i64,
    pub file_id: i64,
    pub user_id: i64,
    pub start_time: DateTime<Utc>,
    pub start_time_offset: i32,
    pub end_time: DateTime<Utc>,
    pub end_time_offset: i32,
    pub started: bool,
    pub still_running: bool,
    pub start_not_captured: bool,
    pub end_not_captured: bool,
    pub in_ts_session: bool,
}

/// What an insert of usage records did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Rows newly written.
    pub stored: u64,
    /// Rows that were already present (same device, `MeterDataID` and end time) and left as is.
    pub duplicates: u64,
    /// The `TimeSerial` given to the rows written.
    pub time_serial: i64,
}

/// A usage batch's result, as first stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub stored: u64,
    pub duplicates: u64,
    /// This request was a replay of a batch already received.
    pub replayed: bool,
}

/// An enrolment token to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnrollmentToken {
    pub site_code: SiteCode,
    pub name: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_uses: Option<i32>,
}

/// An agent being enrolled: its credentials and what it says about its machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    pub agent_id: String,
    pub secret_hash: String,
    pub host_name: String,
    pub fqdn: Option<String>,
    pub os: Option<String>,
    pub serial: Option<String>,
}

/// Which usage records to read.
/// A device's stored inventory beyond its hardware columns.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct DeviceInventory {
    pub software: Vec<tally_core::wire::v1::InstalledSoftware>,
    pub accounts: Vec<tally_core::wire::v1::LocalAccount>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    pub device_id: Option<i64>,
    pub file_ids: Option<Vec<i64>>,
    pub since: Option<DateTime<Utc>>,
    pub page: Page,
}

/// One rule's monthly usage summed over devices and users.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RuleMonth {
    pub rule_id: i64,
    /// `yyyymm` on the clients' calendars.
    pub month: i32,
    pub runs: i64,
    pub users: i64,
    pub devices: i64,
    pub usage_ms: i64,
}

/// Whose use of a rule [`Store::monthly_usage_by`] sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageByKind {
    User,
    Device,
}

/// One user's (or device's) use of a rule over a span of months.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageBy {
    pub id: i64,
    /// The user's account, or the device's host name.
    pub name: String,
    /// The user's full name, or the device's FQDN.
    pub detail: Option<String>,
    pub runs: i64,
    pub usage_ms: i64,
    /// Distinct devices the user ran it on, or distinct users who ran it on the device.
    pub others: i64,
    pub last_used: DateTime<Utc>,
}

/// A package on a device that ships an executable of a given name.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Installation {
    pub device_id: i64,
    pub host_name: String,
    pub package: String,
    pub version: String,
    pub file_name: String,
}

/// Everything Tally keeps. Implementations hold no business rules: they store and return
/// domain values and enforce uniqueness.
#[async_trait]
pub trait Store: Licensing + export::Exporting + Send + Sync + 'static {
    /// Which backend this is, for logs and test names.
    fn backend(&self) -> &'static str;
    async fn schema_version(&self) -> Result<SchemaVersion>;

    async fn put_site(&self, site: &Site) -> Result<()>;
    async fn site(&self, code: &SiteCode) -> Result<Option<Site>>;
    async fn sites(&self) -> Result<Vec<Site>>;

    async fn create_device(&self, device: &NewDevice, at: DateTime<Utc>) -> Result<Device>;
    async fn device(&self, id: i64) -> Result<Option<Device>>;
    async fn devices(&self, page: Page) -> Result<Vec<Device>>;
    async fn touch_device(&self, id: i64, at: DateTime<Utc>) -> Result<()>;

    /// The user's id, creating the user on first sight.
    async fn upsert_user(&self, account: &str, full_name: Option<&str>) -> Result<i64>;
    async fn users(&self, page: Page) -> Result<Vec<User>>;

    /// The file's id, creating the file on first sight.
    async fn upsert_file(&self, file: &FileInfo) -> Result<i64>;
    async fn files(&self, page: Page) -> Result<Vec<StoredFile>>;

    async fn create_rule(
        &self,
        site: &SiteCode,
        origin: RuleOrigin,
        spec: &RuleSpec,
        at: DateTime<Utc>,
    ) -> Result<MeteringRule>;
    async fn update_rule(
        &self,
        id: i64,
        spec: &RuleSpec,
        at: DateTime<Utc>,
    ) -> Result<Option<MeteringRule>>;
    async fn delete_rule(&self, id: i64) -> Result<bool>;
    async fn rule(&self, id: i64) -> Result<Option<MeteringRule>>;
    async fn rules(&self) -> Result<Vec<MeteringRule>>;

    /// Stores records in one transaction under one new `TimeSerial`. A record already stored
    /// (same device, `MeterDataID`, end time) is left untouched and counted as a duplicate.
    async fn insert_usage(&self, records: &[NewUsageRecord]) -> Result<InsertOutcome>;
    async fn usage_records(&self, query: &UsageQuery) -> Result<Vec<UsageRecord>>;

    async fn create_operator_token(
        &self,
        name: &str,
        role: Role,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<OperatorToken>;
    async fn operator_tokens(&self) -> Result<Vec<OperatorToken>>;
    /// The live (not revoked) token with this hash.
    async fn operator_token_by_hash(&self, token_hash: &str) -> Result<Option<OperatorToken>>;

    async fn revoke_operator_token(&self, id: i64, at: DateTime<Utc>) -> Result<bool>;

    async fn create_enrollment_token(
        &self,
        token: &NewEnrollmentToken,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<EnrollmentToken>;
    async fn enrollment_tokens(&self) -> Result<Vec<EnrollmentToken>>;
    async fn revoke_enrollment_token(&self, id: i64, at: DateTime<Utc>) -> Result<bool>;
    /// In one transaction: takes one use of a live enrolment token, creates the device in the
    /// token's site and the agent. `None` when the token is unknown, revoked, expired or used up.
    async fn enroll_agent(
        &self,
        token_hash: &str,
        enrollment: &NewAgent,
        at: DateTime<Utc>,
    ) -> Result<Option<(Agent, tally_core::Device)>>;
    /// The agent and its secret's hash.
    async fn agent(&self, id: &str) -> Result<Option<(Agent, String)>>;
    async fn agents(&self) -> Result<Vec<Agent>>;
    async fn revoke_agent(&self, id: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Records a heartbeat, and spool drops the agent reports (added to its running total).
    async fn agent_heartbeat(
        &self,
        id: &str,
        version: &str,
        dropped: i64,
        at: DateTime<Utc>,
    ) -> Result<()>;

    /// Stores one agent upload once: the first time, records are inserted and the outcome
    /// remembered under `(device_id, batch_id)`; a replay returns the remembered outcome and
    /// writes nothing.
    async fn insert_usage_batch(
        &self,
        device_id: i64,
        batch_id: &str,
        records: &[NewUsageRecord],
        at: DateTime<Utc>,
    ) -> Result<BatchOutcome>;

    /// Replaces a device's inventory (hardware, OS, software) in one transaction. Returns false,
    /// storing nothing but the device's last-seen time, when `hash` equals the stored one.
    async fn put_inventory(
        &self,
        device_id: i64,
        inventory: &tally_core::wire::v1::Inventory,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// The newest `TimeSerial` given to stored usage.
    async fn max_time_serial(&self) -> Result<i64>;
    /// Records with `after_serial < time_serial <= upto_serial`, in `(time_serial, id)` order,
    /// after the record `(after_serial_of_page, after_id)`: a page of `limit`.
    async fn usage_by_serial(
        &self,
        range: (i64, i64),
        after: (i64, i64),
        limit: i64,
    ) -> Result<Vec<UsageRecord>>;
    /// Records whose period overlaps `[from, to)` (an instant at `from` included).
    async fn usage_overlapping(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<UsageRecord>>;
    /// Records with `time_serial > watermark`: what a summariser has still to read.
    async fn usage_pending(&self, watermark: i64) -> Result<i64>;
    /// Replaces the hourly rows of `keys` (rule, hour) with `rows` (a subset of the keys).
    async fn replace_file_usage_hours(
        &self,
        keys: &[(i64, DateTime<Utc>)],
        rows: &[tally_core::summary::FileUsageHour],
    ) -> Result<()>;
    async fn file_usage_hours(
        &self,
        rule_id: Option<i64>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<tally_core::summary::FileUsageHour>>;
    /// Adds `rows` to the monthly summary and moves the task's watermark from `from` to `to`,
    /// in one transaction; fails with [`StoreError::Conflict`] when the watermark is no longer
    /// `from` (another replica summarised meanwhile), adding nothing.
    async fn add_monthly_usage(
        &self,
        rows: &[(
            tally_core::summary::MonthKey,
            tally_core::summary::MonthlyUsage,
        )],
        watermark: (i64, i64),
    ) -> Result<()>;
    async fn monthly_usage(
        &self,
        rule_id: Option<i64>,
        months: (i32, i32),
    ) -> Result<
        Vec<(
            tally_core::summary::MonthKey,
            tally_core::summary::MonthlyUsage,
        )>,
    >;
    /// Marks raw records summarised by both summaries (`time_serial <= summarised`) and ended
    /// before `before` as `Released`, deletes them, and returns how many.
    async fn delete_aged_usage(&self, before: DateTime<Utc>, summarised: i64) -> Result<u64>;
    /// Deletes hourly rows before `before` and monthly rows of months before `before_month`.
    async fn delete_aged_summaries(&self, before: DateTime<Utc>, before_month: i32) -> Result<u64>;
    /// Every task's state; tasks never stored yet come with their defaults.
    async fn tasks(&self) -> Result<Vec<tally_core::tasks::TaskState>>;
    async fn put_task(&self, task: &tally_core::tasks::TaskState) -> Result<()>;
    /// The right to run the task `name` now, or `None` while it runs elsewhere (this
    /// process, or another replica on PostgreSQL).
    async fn lock_task(&self, name: &str) -> Result<Option<TaskLock>>;
    /// Monthly usage per rule and month, summed over devices and users, for months in
    /// `first..=last` (`yyyymm`).
    async fn monthly_totals(&self, months: (i32, i32)) -> Result<Vec<RuleMonth>>;
    /// One rule's monthly usage summed per user or per device, most used first.
    async fn monthly_usage_by(
        &self,
        by: UsageByKind,
        rule_id: i64,
        months: (i32, i32),
    ) -> Result<Vec<UsageBy>>;
    /// Packages, on any device, that ship an executable named `file_name` (any case).
    async fn installations(&self, file_name: &str) -> Result<Vec<Installation>>;
    /// A device's installed software (with executables) and local accounts.
    async fn device_inventory(&self, device_id: i64) -> Result<DeviceInventory>;
    /// Every executable in inventory with the number of devices shipping it.
    async fn executables_seen(&self) -> Result<Vec<tally_core::autorules::ExecutableSeen>>;
    /// Devices that have reported an inventory.
    async fn inventoried_devices(&self) -> Result<i64>;

    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;
    async fn audit_log(&self, page: Page) -> Result<Vec<(i64, AuditEntry)>>;
}

/// Opens the store a URL names: `sqlite://PATH` (created if missing) or `postgres://…`.
/// Migrations are applied; a database newer than this binary is refused.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PgStore::open(url).await?))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(std::sync::Arc::new(
            SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    } else {
        Err(StoreError::BadUrl(url.to_string()))
    }
}
