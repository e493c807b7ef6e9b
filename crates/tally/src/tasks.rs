//! `tally tasks` and `tally summaries`: site maintenance and what it produces.

use anyhow::{bail, Result};
use clap::Subcommand;
use serde::Serialize;
use tally_api::{FileUsageRow, MonthlyRow, SummaryFilter, TaskChange, TaskView};

use crate::admin::ApiArgs;
use crate::output::{duration_text, print_lines, time_text};

#[derive(Subcommand, Debug)]
pub enum TasksCmd {
    /// Every task: schedule, last run, rows, watermark and how many records wait for it.
    List,
    /// Run a task now and show its state after the run.
    Run { name: String },
    /// Change a task's schedule or age.
    Set {
        name: String,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        /// Hours between runs.
        #[arg(long)]
        every_hours: Option<u32>,
        /// Delete data older than this many days (the deleting tasks only).
        #[arg(long)]
        age_days: Option<i32>,
    },
}

const TASK_COLUMNS: &[&str] = &[
    "name",
    "enabled",
    "every",
    "age_days",
    "last_run",
    "took",
    "last_rows",
    "watermark",
    "pending_records",
    "last_error",
];

/// A task as the table shows it: its interval and last run's length in units that fit (the
/// unit `tasks set --every-hours` takes reads back as hours), times to the second.
#[derive(Serialize)]
struct TaskLine<'a> {
    name: &'a str,
    enabled: bool,
    every: String,
    age_days: Option<i32>,
    last_run: Option<String>,
    took: Option<String>,
    last_rows: Option<i64>,
    /// The summarising tasks' `TimeSerial`; the ageing task's newest cut-off, as a time.
    watermark: Option<String>,
    pending_records: Option<i64>,
    last_error: Option<&'a str>,
}

impl<'a> From<&'a TaskView> for TaskLine<'a> {
    fn from(v: &'a TaskView) -> Self {
        let t = &v.state;
        TaskLine {
            name: &t.name,
            enabled: t.enabled,
            every: duration_text(t.every_secs.saturating_mul(1000)),
            age_days: t.age_days,
            last_run: t.last_run_at.map(time_text),
            took: t.last_duration_ms.map(duration_text),
            last_rows: t.last_rows,
            watermark: watermark_text(t),
            pending_records: v.pending_records,
            last_error: t.last_error.as_deref(),
        }
    }
}

/// A task's watermark as people read it (see `TaskLine::watermark`); none for the tasks that
/// do not use theirs.
fn watermark_text(t: &tally_core::tasks::TaskState) -> Option<String> {
    use tally_core::tasks::Task;
    match Task::parse(&t.name)? {
        task if task.reads_raw_usage() => Some(t.watermark.to_string()),
        _ => t
            .ageing_cutoff()
            .map(|at| format!("cut-off {}", time_text(at))),
    }
}

pub async fn tasks(api: &ApiArgs, cmd: Option<TasksCmd>) -> Result<()> {
    let client = api.client()?;
    let rows = match cmd.unwrap_or(TasksCmd::List) {
        TasksCmd::List => client.tasks().await?,
        TasksCmd::Run { name } => {
            let view = client.run_task(&name).await?;
            if let Some(error) = &view.state.last_error {
                bail!("task {name} failed: {error}");
            }
            vec![view]
        }
        TasksCmd::Set {
            name,
            enable,
            disable,
            every_hours,
            age_days,
        } => {
            let enabled = match (enable, disable) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let change = TaskChange {
                enabled,
                every_secs: every_hours.map(|h| i64::from(h) * 3600),
                age_days,
            };
            vec![client.change_task(&name, &change).await?]
        }
    };
    Ok(print_lines(
        &rows,
        TASK_COLUMNS,
        api.format,
        TaskLine::from,
    )?)
}

#[derive(Subcommand, Debug)]
pub enum SummariesCmd {
    /// Per rule and UTC hour: users, devices, remote users, usage, peaks.
    FileUsage(SummaryArgs),
    /// Per rule, device, user and month: runs, usage, last use.
    Monthly(SummaryArgs),
}

#[derive(clap::Args, Debug)]
pub struct SummaryArgs {
    /// Only this rule (by name).
    #[arg(long)]
    rule: Option<String>,
    /// First day, YYYY-MM-DD.
    #[arg(long)]
    from: Option<String>,
    /// Last day, YYYY-MM-DD.
    #[arg(long)]
    to: Option<String>,
    /// On a parent site: only devices of this site and the sites below it (default: the whole
    /// subtree this site holds). Hourly figures are then recomputed from the raw records, at
    /// most 92 days at a time.
    #[arg(long, value_name = "CODE")]
    site: Option<String>,
}

/// A monthly summary row as the table shows it: names, the month as `YYYY-MM`, the usage in
/// units that fit.
#[derive(Serialize)]
struct MonthlyLine<'a> {
    rule: &'a str,
    month: String,
    host_name: &'a str,
    account: &'a str,
    runs: i64,
    usage: String,
    last_used: String,
}

impl<'a> From<&'a MonthlyRow> for MonthlyLine<'a> {
    fn from(r: &'a MonthlyRow) -> Self {
        MonthlyLine {
            rule: &r.rule,
            month: format!("{}-{:02}", r.month / 100, r.month % 100),
            host_name: &r.host_name,
            account: &r.account,
            runs: r.runs,
            usage: duration_text(r.usage_ms),
            last_used: time_text(r.last_used),
        }
    }
}

/// An hourly summary row as the table shows it.
#[derive(Serialize)]
struct HourLine<'a> {
    rule: &'a str,
    hour: String,
    users: i64,
    devices: i64,
    remote_users: i64,
    usage: String,
    peak_runs: i64,
    peak_users: i64,
}

impl<'a> From<&'a FileUsageRow> for HourLine<'a> {
    fn from(r: &'a FileUsageRow) -> Self {
        let h = &r.hour;
        HourLine {
            rule: &r.rule,
            hour: h.hour.format("%Y-%m-%d %H:00 UTC").to_string(),
            users: h.distinct_users,
            devices: h.distinct_devices,
            remote_users: h.distinct_ts_users,
            usage: duration_text(h.usage_ms),
            peak_runs: h.peak_concurrent_runs,
            peak_users: h.peak_concurrent_users,
        }
    }
}

pub async fn summaries(api: &ApiArgs, cmd: SummariesCmd) -> Result<()> {
    let client = api.client()?;
    let filter = |a: SummaryArgs| SummaryFilter {
        rule: a.rule,
        from: a.from,
        to: a.to,
        site: a.site,
    };
    match cmd {
        SummariesCmd::FileUsage(a) => {
            let columns = &[
                "rule",
                "hour",
                "users",
                "devices",
                "remote_users",
                "usage",
                "peak_runs",
                "peak_users",
            ];
            let rows = client.file_usage(&filter(a)).await?;
            Ok(print_lines(&rows, columns, api.format, HourLine::from)?)
        }
        SummariesCmd::Monthly(a) => {
            let columns = &[
                "rule",
                "month",
                "host_name",
                "account",
                "runs",
                "usage",
                "last_used",
            ];
            let rows = client.monthly(&filter(a)).await?;
            Ok(print_lines(&rows, columns, api.format, MonthlyLine::from)?)
        }
    }
}
