//! Summary, task and inventory rows that the report queries and maintenance read.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tally_core::inventory::{DeviceInventory, Installation};
use tally_core::summary::{RuleMonth, UsageBy};
use tally_core::tasks::{Task, TaskState};
use tally_core::wire::v1::{InstalledSoftware, LocalAccount};

#[derive(sqlx::FromRow)]
pub(crate) struct RuleMonthColumns {
    rule_id: i64,
    month: i32,
    runs: i64,
    users: i64,
    devices: i64,
    usage_ms: i64,
}

impl From<RuleMonthColumns> for RuleMonth {
    fn from(r: RuleMonthColumns) -> Self {
        RuleMonth {
            rule_id: r.rule_id,
            month: r.month,
            runs: r.runs,
            users: r.users,
            devices: r.devices,
            usage_ms: r.usage_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UsageByColumns {
    id: i64,
    name: String,
    detail: Option<String>,
    runs: i64,
    usage_ms: i64,
    others: i64,
    last_used: DateTime<Utc>,
}

impl From<UsageByColumns> for UsageBy {
    fn from(r: UsageByColumns) -> Self {
        UsageBy {
            id: r.id,
            name: r.name,
            detail: r.detail,
            runs: r.runs,
            usage_ms: r.usage_ms,
            others: r.others,
            last_used: r.last_used,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct InstallationColumns {
    device_id: i64,
    host_name: String,
    package: String,
    version: String,
    file_name: String,
}

impl From<InstallationColumns> for Installation {
    fn from(r: InstallationColumns) -> Self {
        Installation {
            device_id: r.device_id,
            host_name: r.host_name,
            package: r.package,
            version: r.version,
            file_name: r.file_name,
        }
    }
}

/// A local account's columns: name, uid, full name, shell, service account, reason.
pub(crate) type AccountColumns = (String, i64, Option<String>, String, bool, Option<String>);

/// Assembles a device's stored inventory from its three tables' rows.
pub(crate) fn device_inventory(
    software: Vec<(String, String, String)>,
    executables: Vec<(String, String)>,
    accounts: Vec<AccountColumns>,
) -> DeviceInventory {
    let mut by_package: HashMap<String, Vec<String>> = HashMap::new();
    for (package, file) in executables {
        by_package.entry(package).or_default().push(file);
    }
    DeviceInventory {
        software: software
            .into_iter()
            .map(|(name, version, publisher)| InstalledSoftware {
                executables: by_package.remove(&name).unwrap_or_default(),
                name,
                version,
                publisher,
            })
            .collect(),
        accounts: accounts
            .into_iter()
            .map(
                |(name, uid, full_name, shell, service_account, reason)| LocalAccount {
                    name,
                    uid: u32::try_from(uid).unwrap_or_default(),
                    full_name,
                    shell,
                    service_account,
                    reason,
                },
            )
            .collect(),
    }
}

/// Stored task rows, with every task not stored yet at its defaults, in [`Task::ALL`] order.
pub(crate) fn with_defaults(stored: Vec<super::TaskColumns>) -> Vec<TaskState> {
    let mut stored: HashMap<String, TaskState> = stored
        .into_iter()
        .map(|r| {
            let t: TaskState = r.into();
            (t.name.clone(), t)
        })
        .collect();
    Task::ALL
        .iter()
        .map(|t| stored.remove(t.name()).unwrap_or_else(|| t.defaults()))
        .collect()
}
