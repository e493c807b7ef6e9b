//! `tally tasks` and `tally summaries`: site maintenance and what it produces.

use anyhow::{bail, Result};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use crate::admin::{urlencode, ApiArgs};
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
        TasksCmd::List => client.get("/api/v1/tasks").await?,
        TasksCmd::Run { name } => {
            let path = format!("/api/v1/tasks/{name}/run");
            let state = client.call(Method::POST, &path, None).await?;
            if let Some(error) = state["last_error"].as_str() {
                bail!("task {name} failed: {error}");
            }
            json!([state])
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
            let every_secs: Option<i64> = every_hours.map(|h| i64::from(h) * 3600);
            let body = json!({
                "enabled": enabled,
                "every_secs": every_secs,
                "age_days": age_days,
            });
            let path = format!("/api/v1/tasks/{name}");
            json!([client.call(Method::PATCH, &path, Some(&body)).await?])
        }
    };
    let rows = rows.as_array().cloned().unwrap_or_default();
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
    let (path, args, columns): (&str, SummaryArgs, &[&str]) = match cmd {
        SummariesCmd::FileUsage(a) => (
            "/api/v1/summaries/file-usage",
            a,
            &[
                "rule_id",
                "hour",
                "distinct_users",
                "distinct_devices",
                "distinct_ts_users",
                "usage_ms",
                "peak_concurrent_runs",
                "peak_concurrent_users",
            ],
        ),
        SummariesCmd::Monthly(a) => (
            "/api/v1/summaries/monthly",
            a,
            &[
                "rule_id",
                "month",
                "device_id",
                "user_id",
                "runs",
                "usage_ms",
                "last_used",
            ],
        ),
    };
    let query: Vec<String> = [("rule", args.rule), ("from", args.from), ("to", args.to)]
        .into_iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", urlencode(&v?))))
        .collect();
    let url = format!("{path}?{}", query.join("&"));
    let rows: Value = api.client()?.get(&url).await?;
    let rows = rows.as_array().cloned().unwrap_or_default();
    Ok(print(&rows, columns, api.format)?)
}
