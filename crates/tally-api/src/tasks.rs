//! Maintenance views: a task's state with its backlog, schedule changes, and the monthly
//! usage summary's rows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_core::summary::{FileUsageHour, MonthKey, MonthlyUsage};
use tally_core::tasks::TaskState;
use utoipa::ToSchema;

/// A task's state with how far its summary lags behind the newest usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskView {
    #[serde(flatten)]
    pub state: TaskState,
    /// For the tasks that read raw records: those stored after the watermark, not yet taken in.
    pub pending_records: Option<i64>,
    /// The newest `TimeSerial` handed out (on PostgreSQL its write may still be in flight).
    pub newest_serial: i64,
}

/// Schedule changes; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskChange {
    pub enabled: Option<bool>,
    /// At least a minute.
    #[schema(minimum = 60)]
    pub every_secs: Option<i64>,
    /// The task's own range (e.g. 2–255 for delete_aged_usage); at most 3,650.
    #[schema(minimum = 1, maximum = 3650)]
    pub age_days: Option<i32>,
}

/// One monthly summary row, with the names people read beside the ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MonthlyRow {
    pub rule_id: i64,
    /// The rule's name.
    #[serde(default)]
    pub rule: String,
    pub device_id: i64,
    #[serde(default)]
    pub host_name: String,
    pub user_id: i64,
    /// The user's account (a pseudonym where names are pseudonymised).
    #[serde(default)]
    pub account: String,
    /// `yyyymm` on the client's calendar.
    pub month: i32,
    pub runs: i64,
    pub usage_ms: i64,
    pub last_used: DateTime<Utc>,
}

impl From<(MonthKey, MonthlyUsage)> for MonthlyRow {
    fn from((k, u): (MonthKey, MonthlyUsage)) -> Self {
        Self {
            rule_id: k.rule_id,
            rule: String::new(),
            device_id: k.device_id,
            host_name: String::new(),
            user_id: k.user_id,
            account: String::new(),
            month: k.month,
            runs: u.runs,
            usage_ms: u.usage_ms,
            last_used: u.last_used,
        }
    }
}

/// One hourly summary row with its rule's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileUsageRow {
    /// The rule's name.
    pub rule: String,
    #[serde(flatten)]
    pub hour: FileUsageHour,
}
