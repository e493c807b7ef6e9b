//! Site maintenance tasks: what each does, its defaults, and the state it reports.
//!
//! Defaults follow Configuration Manager's software-metering maintenance tasks ("Maintenance
//! Tasks for Software Metering in Configuration Manager"): both summarisation tasks run daily;
//! Delete Aged Software Metering Data runs daily and deletes data older than 5 days (2–255
//! allowed); Delete Aged Software Metering Summary Data runs weekly and deletes summaries older
//! than 270 days. Automatic rule generation runs daily, as Configuration Manager evaluates it.
//! Writing the scheduled reports is Tally's own: daily, keeping 90 days of report folders; so is
//! the daily compliance snapshot, and the hourly recording of the agent's runs as usage
//! sessions (hourly, so that a day's concurrent use is known the same day).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The maintenance tasks a site runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    SummarizeFileUsage,
    SummarizeMonthlyUsage,
    /// Records the runs of programs that applications' metering rules meter as usage
    /// sessions of those applications, incrementally from its `TimeSerial` watermark.
    RecordUsageSessions,
    DeleteAgedUsage,
    DeleteAgedSummaries,
    GenerateAutoRules,
    /// Writes the configured reports to `reports/<date>/` in the data directory and deletes
    /// report folders older than its age.
    WriteReports,
    /// Computes every application's compliance position and keeps the day's figures, so
    /// trends can be shown.
    SnapshotCompliance,
    /// Writes the system-metering report (seed 003) to `metering/reports/<date>/`, sends it
    /// when an upload URL is set, and feeds its figures back into the license models.
    SystemMetering,
}

const DAY: i64 = 24 * 60 * 60;

impl Task {
    pub const ALL: [Task; 9] = [
        Task::SummarizeFileUsage,
        Task::SummarizeMonthlyUsage,
        Task::RecordUsageSessions,
        Task::DeleteAgedUsage,
        Task::DeleteAgedSummaries,
        Task::GenerateAutoRules,
        Task::WriteReports,
        Task::SnapshotCompliance,
        Task::SystemMetering,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Task::SummarizeFileUsage => "summarize_file_usage",
            Task::SummarizeMonthlyUsage => "summarize_monthly_usage",
            Task::RecordUsageSessions => "record_usage_sessions",
            Task::DeleteAgedUsage => "delete_aged_usage",
            Task::DeleteAgedSummaries => "delete_aged_summaries",
            Task::GenerateAutoRules => "generate_auto_rules",
            Task::WriteReports => "write_reports",
            Task::SnapshotCompliance => "snapshot_compliance",
            Task::SystemMetering => "system_metering",
        }
    }

    pub fn parse(name: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether the task takes in raw usage records from a `TimeSerial` watermark (and so has
    /// records pending, and holds back the deletion of aged records until it has them).
    pub fn reads_raw_usage(self) -> bool {
        matches!(
            self,
            Task::SummarizeFileUsage | Task::SummarizeMonthlyUsage | Task::RecordUsageSessions
        )
    }

    /// Seconds between runs by default.
    pub fn default_every_secs(self) -> i64 {
        match self {
            Task::DeleteAgedSummaries => 7 * DAY,
            Task::RecordUsageSessions => DAY / 24,
            // Monthly, as seed 003's metering runs.
            Task::SystemMetering => 30 * DAY,
            _ => DAY,
        }
    }

    /// The age beyond which data is deleted, for the tasks that delete.
    pub fn default_age_days(self) -> Option<i32> {
        match self {
            Task::DeleteAgedUsage => Some(5),
            Task::DeleteAgedSummaries => Some(270),
            Task::WriteReports => Some(90),
            _ => None,
        }
    }

    /// The ages an administrator may set.
    pub fn age_range(self) -> Option<std::ops::RangeInclusive<i32>> {
        match self {
            Task::DeleteAgedUsage => Some(2..=255),
            Task::DeleteAgedSummaries => Some(1..=3650),
            Task::WriteReports => Some(1..=3650),
            _ => None,
        }
    }

    pub fn defaults(self) -> TaskState {
        TaskState {
            name: self.name().to_string(),
            enabled: true,
            every_secs: self.default_every_secs(),
            age_days: self.default_age_days(),
            last_run_at: None,
            last_duration_ms: None,
            last_rows: None,
            watermark: 0,
            last_error: None,
        }
    }
}

/// A task's schedule and what its last run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskState {
    pub name: String,
    pub enabled: bool,
    pub every_secs: i64,
    pub age_days: Option<i32>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_duration_ms: Option<i64>,
    /// Rows the last run wrote or deleted.
    pub last_rows: Option<i64>,
    /// For the summarisation tasks and `record_usage_sessions`: the `TimeSerial` up to which
    /// raw records have been taken in. For `delete_aged_usage`: the newest cut-off it used, in
    /// microseconds since 1970 (raw records that ended before it may be gone); 0 otherwise.
    pub watermark: i64,
    pub last_error: Option<String>,
}

impl TaskState {
    /// For `delete_aged_usage`: the newest cut-off it used (its watermark): raw records that
    /// ended before it may be gone. `None` for other tasks and before such a run.
    pub fn ageing_cutoff(&self) -> Option<DateTime<Utc>> {
        let ageing = self.name == Task::DeleteAgedUsage.name() && self.watermark > 0;
        ageing.then(|| DateTime::from_timestamp_micros(self.watermark))?
    }

    /// Whether the task should run at `now`.
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        self.enabled
            && self
                .last_run_at
                .is_none_or(|at| (now - at).num_seconds() >= self.every_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_defaults_follow_configuration_manager() {
        for t in Task::ALL {
            assert_eq!(Task::parse(t.name()), Some(t));
        }
        assert_eq!(Task::DeleteAgedUsage.defaults().age_days, Some(5));
        assert_eq!(Task::DeleteAgedSummaries.defaults().age_days, Some(270));
        assert_eq!(Task::DeleteAgedSummaries.defaults().every_secs, 7 * DAY);
        assert!(Task::parse("nope").is_none());
    }

    #[test]
    fn a_task_is_due_when_never_run_or_its_interval_passed() {
        let mut s = Task::SummarizeFileUsage.defaults();
        let now = Utc::now();
        assert!(s.due(now));
        s.last_run_at = Some(now - chrono::Duration::hours(23));
        assert!(!s.due(now));
        s.last_run_at = Some(now - chrono::Duration::hours(24));
        assert!(s.due(now));
        s.enabled = false;
        assert!(!s.due(now));
    }
}
