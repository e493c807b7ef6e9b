//! Usage summaries (hourly per rule, monthly per rule, device and user) and the maintenance
//! tasks that make and age them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::summary::{FileUsageHour, MonthKey, MonthlyUsage, RuleMonth, UsageBy, UsageByKind};
use tally_core::tasks::TaskState;
use tally_core::SiteCode;

/// Which columns of a task's row a write owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskPart {
    /// What an operator sets: enabled, the interval, the age.
    Settings,
    /// What a run leaves: when it ran, how long, how many rows, the watermark, the error.
    Outcome,
}

use crate::{AuditNote, Result, TaskLock};

/// Whose monthly usage [`SummaryStore::monthly_usage_of`] reads: one device's or one user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageOf {
    Device(i64),
    User(i64),
}

/// A monthly row's rule, device and user by their names as stored now (`None` where the row
/// outlived one of them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonthNames {
    pub rule: Option<String>,
    pub host_name: Option<String>,
    pub account: Option<String>,
}

#[async_trait]
pub trait SummaryStore: Send + Sync {
    /// Replaces the hourly rows of `keys` (rule, hour) with `rows` (a subset of the keys).
    async fn replace_file_usage_hours(
        &self,
        keys: &[(i64, DateTime<Utc>)],
        rows: &[FileUsageHour],
    ) -> Result<()>;
    /// [`Self::replace_file_usage_hours`] and the hourly task's watermark moved from `from` to
    /// `to`, in one transaction; a conflict, storing nothing, when the watermark is no longer
    /// `from`. For rows merged into stored ones, which must be written exactly once.
    async fn replace_file_usage_hours_moving(
        &self,
        keys: &[(i64, DateTime<Utc>)],
        rows: &[FileUsageHour],
        watermark: (i64, i64),
    ) -> Result<()>;
    async fn file_usage_hours(
        &self,
        rule_id: Option<i64>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<FileUsageHour>>;
    /// Adds `rows` to the monthly summary and moves the task's watermark from `from` to `to`,
    /// in one transaction; fails with [`crate::StoreError::Conflict`] when the watermark is no
    /// longer `from` (another replica summarised meanwhile), adding nothing.
    async fn add_monthly_usage(
        &self,
        rows: &[(MonthKey, MonthlyUsage)],
        watermark: (i64, i64),
    ) -> Result<()>;
    /// The monthly rows of `rule_id` (or every rule) in `months` (`yyyymm`, inclusive); with
    /// `sites`, only those of devices of these sites.
    async fn monthly_usage(
        &self,
        rule_id: Option<i64>,
        months: (i32, i32),
        sites: Option<&[SiteCode]>,
    ) -> Result<Vec<(MonthKey, MonthlyUsage)>>;
    /// One device's or user's monthly rows in `months` (`yyyymm`, inclusive), newest month
    /// first, each with its names: what a device's or a user's page shows, read by index
    /// instead of every row of the months.
    async fn monthly_usage_of(
        &self,
        of: UsageOf,
        months: (i32, i32),
    ) -> Result<Vec<(MonthKey, MonthlyUsage, MonthNames)>>;
    /// Deletes hourly rows before `before` and monthly rows of months before `before_month`.
    async fn delete_aged_summaries(&self, before: DateTime<Utc>, before_month: i32) -> Result<u64>;
    /// Monthly usage per rule and month, summed over devices and users, for months in
    /// `first..=last` (`yyyymm`); with `sites`, over the devices of these sites only.
    async fn monthly_totals(
        &self,
        months: (i32, i32),
        sites: Option<&[SiteCode]>,
    ) -> Result<Vec<RuleMonth>>;
    /// One rule's monthly usage summed per user or per device, most used first; with `sites`,
    /// over the devices of these sites only.
    async fn monthly_usage_by(
        &self,
        by: UsageByKind,
        rule_id: i64,
        months: (i32, i32),
        sites: Option<&[SiteCode]>,
    ) -> Result<Vec<UsageBy>>;

    /// Every task's state; tasks never stored yet come with their defaults.
    async fn tasks(&self) -> Result<Vec<TaskState>>;
    /// Stores `part` of the task's state (the rest of a stored row is left as it is), with
    /// `audit` in the same transaction. A run records only its outcome and an operator's change
    /// only the settings, so neither undoes the other when they meet.
    async fn put_task(&self, task: &TaskState, part: TaskPart, audit: AuditNote<'_>) -> Result<()>;
    /// The right to run the task `name` now, or `None` while it runs elsewhere (this
    /// process, or another replica on PostgreSQL).
    async fn lock_task(&self, name: &str) -> Result<Option<TaskLock>>;
}
