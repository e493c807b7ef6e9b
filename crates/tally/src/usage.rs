//! `tally usage`: usage records and runs, with the names of their programs, rules, users and
//! hosts.

use std::collections::HashMap;

use anyhow::Result;
use clap::Args;
use serde::Serialize;
use serde_json::json;
use tally_api::{Client, UsageFilter};
use tally_core::{RuleIndex, UsageRecord};

use crate::admin::ApiArgs;
use crate::estate::{device_id, user_id};
use crate::output::{duration_text, print_lines, time_text};
#[derive(Args, Debug)]
pub struct UsageArgs {
    /// Show runs (one line per program execution) instead of raw records.
    #[arg(long)]
    runs: bool,
    /// Only programs this rule meters (by name).
    #[arg(long)]
    rule: Option<String>,
    /// Only usage ending on or after this date (YYYY-MM-DD) or time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Only this device: its host name or id (see tally devices).
    #[arg(long)]
    device: Option<String>,
    /// Only this user: its account or id (see tally users).
    #[arg(long)]
    user: Option<String>,
    /// Only devices of this site and the sites below it (on a parent site).
    #[arg(long)]
    site: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// A usage record or run with the names of its program, rules, user and host, for people to
/// read; JSON and CSV keep the ids next to them.
#[derive(Serialize)]
struct Named<'a, T> {
    #[serde(flatten)]
    row: &'a T,
    program: Option<String>,
    rules: String,
    user: Option<String>,
    host: Option<String>,
}

/// The ids a usage row carries: file, user, device.
trait UsageIds {
    fn ids(&self) -> [i64; 3];
}

impl UsageIds for UsageRecord {
    fn ids(&self) -> [i64; 3] {
        [self.file_id, self.user_id, self.device_id]
    }
}

impl UsageIds for tally_core::runs::Run {
    fn ids(&self) -> [i64; 3] {
        [self.file_id, self.user_id, self.device_id]
    }
}

/// Adds program, rule, user and host names to rows that carry only ids.
async fn with_names<'a, T: UsageIds>(client: &Client, rows: &'a [T]) -> Result<Vec<Named<'a, T>>> {
    fn index<T>(rows: Vec<T>, name: impl Fn(T) -> (i64, String)) -> HashMap<i64, String> {
        rows.into_iter().map(name).collect()
    }
    let rules = RuleIndex::new(client.rules().await?);
    let files = client.files().await?;
    let rule_names = index(files.clone(), |f| {
        let names: Vec<&str> = rules
            .matching(&f.info)
            .map(|r| r.spec.name.as_str())
            .collect();
        (f.id, names.join(", "))
    });
    let files = index(files, |f| {
        let name = format!("{} {}", f.info.file_name, f.info.version);
        (f.id, name.trim().to_string())
    });
    let users = index(client.users().await?, |u| (u.id, u.account));
    let hosts = index(client.devices().await?, |d| (d.id, d.host_name));
    let named = rows
        .iter()
        .map(|row| {
            let [file, user, device] = row.ids();
            Named {
                row,
                program: files.get(&file).cloned(),
                rules: rule_names.get(&file).cloned().unwrap_or_default(),
                user: users.get(&user).cloned(),
                host: hosts.get(&device).cloned(),
            }
        })
        .collect();
    Ok(named)
}

pub async fn usage(api: &ApiArgs, args: UsageArgs) -> Result<()> {
    let client = api.client()?;
    let device_id = match &args.device {
        Some(key) => Some(device_id(&client, key).await?),
        None => None,
    };
    let user_id = match &args.user {
        Some(key) => Some(user_id(&client, key).await?),
        None => None,
    };
    let filter = UsageFilter {
        rule: args.rule,
        since: args.since,
        device_id,
        user_id,
        limit: args.limit.clamp(1, 1000),
        after: None,
        site: args.site,
    };
    if args.runs {
        let runs = client.runs(&filter).await?;
        let named = with_names(&client, &runs).await?;
        let columns = &[
            "program", "rules", "user", "host", "start", "end", "used", "state", "records",
        ];
        return Ok(print_lines(&named, columns, api.format, |n| {
            let r = n.row;
            json!({
                "program": n.program, "rules": n.rules, "user": n.user, "host": n.host,
                "start": time_text(r.start_time), "end": time_text(r.end_time),
                "used": duration_text(r.usage_seconds.saturating_mul(1000)),
                "state": if r.still_running { "running" } else { "ended" },
                "records": r.records,
            })
        })?);
    }
    let records = client.usage(&filter).await?;
    let named = with_names(&client, &records).await?;
    let columns = &[
        "id", "program", "rules", "user", "host", "start", "end", "length", "flags",
    ];
    Ok(print_lines(&named, columns, api.format, |n| {
        let r = n.row;
        let flags = [
            (r.started, "started"),
            (r.still_running, "still running"),
            (r.start_not_captured, "start not captured"),
            (r.end_not_captured, "end not captured"),
            (r.in_ts_session, "remote session"),
        ];
        let flags: Vec<&str> = flags
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| *f)
            .collect();
        json!({
            "id": r.id, "program": n.program, "rules": n.rules, "user": n.user, "host": n.host,
            "start": time_text(r.start_time), "end": time_text(r.end_time),
            "length": duration_text((r.end_time - r.start_time).num_milliseconds()),
            "flags": flags.join(", "),
        })
    })?)
}
