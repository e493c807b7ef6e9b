//! `tally tasks` and `tally summaries`: site maintenance and what it produces.

use anyhow::{bail, Result};
use clap::Subcommand;
use tally_api::{SummaryFilter, TaskChange};

use crate::admin::ApiArgs;
use crate::output::print;

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
    "every_secs",
    "age_days",
    "last_run_at",
    "last_duration_ms",
    "last_rows",
    "watermark",
    "pending_records",
    "last_error",
];

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
    Ok(print(&rows, TASK_COLUMNS, api.format)?)
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
}

pub async fn summaries(api: &ApiArgs, cmd: SummariesCmd) -> Result<()> {
    let client = api.client()?;
    let filter = |a: SummaryArgs| SummaryFilter {
        rule: a.rule,
        from: a.from,
        to: a.to,
    };
    match cmd {
        SummariesCmd::FileUsage(a) => {
            let columns = &[
                "rule_id",
                "hour",
                "distinct_users",
                "distinct_devices",
                "distinct_ts_users",
                "usage_ms",
                "peak_concurrent_runs",
                "peak_concurrent_users",
            ];
            let rows = client.file_usage(&filter(a)).await?;
            Ok(print(&rows, columns, api.format)?)
        }
        SummariesCmd::Monthly(a) => {
            let columns = &[
                "rule_id",
                "month",
                "device_id",
                "user_id",
                "runs",
                "usage_ms",
                "last_used",
            ];
            let rows = client.monthly(&filter(a)).await?;
            Ok(print(&rows, columns, api.format)?)
        }
    }
}
