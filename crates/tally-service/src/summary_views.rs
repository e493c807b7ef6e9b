//! The summary tables as people read them: each row's rule, computer and user by name beside
//! the ids (`tally summaries`, `/api/v1/summaries/*`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tally_api::{FileUsageRow, MonthlyRow};
use tally_core::SiteCode;
use tally_store::Store;

use crate::{Result, Service};

/// Rule, host and account names by id.
struct Names {
    rules: HashMap<i64, String>,
    hosts: HashMap<i64, String>,
    accounts: HashMap<i64, String>,
}

impl Names {
    async fn rules(store: &dyn Store) -> Result<HashMap<i64, String>> {
        Ok(store
            .rules()
            .await?
            .into_iter()
            .map(|r| (r.id, r.spec.name))
            .collect())
    }

    async fn read(store: &dyn Store) -> Result<Self> {
        let hosts = store.compliance_devices().await?;
        let users = store.compliance_users().await?;
        Ok(Self {
            rules: Self::rules(store).await?,
            hosts: hosts.into_iter().map(|d| (d.id, d.host_name)).collect(),
            accounts: users.into_iter().map(|u| (u.id, u.account)).collect(),
        })
    }
}

/// `rule 7` when a rule was deleted since (its rows go with it, but a row read meanwhile).
fn name_of(names: &HashMap<i64, String>, what: &str, id: i64) -> String {
    names
        .get(&id)
        .cloned()
        .unwrap_or_else(|| format!("{what} {id}"))
}

/// The monthly rows of `rule` (or every rule) in `months` (`yyyymm`, inclusive), named; with
/// `sites`, only those of devices of these sites.
pub async fn monthly(
    store: &dyn Store,
    rule: Option<i64>,
    months: (i32, i32),
    sites: Option<&[SiteCode]>,
) -> Result<Vec<MonthlyRow>> {
    let names = Names::read(store).await?;
    let rows = store.monthly_usage(rule, months, sites).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut row = MonthlyRow::from(row);
            row.rule = name_of(&names.rules, "rule", row.rule_id);
            row.host_name = name_of(&names.hosts, "device", row.device_id);
            row.account = name_of(&names.accounts, "user", row.user_id);
            row
        })
        .collect())
}

/// One device's or user's monthly rows in `months` (`yyyymm`, inclusive), newest month first,
/// named — without reading every rule's, device's and user's name as [`monthly`] does.
pub async fn monthly_of(
    store: &dyn Store,
    of: tally_store::UsageOf,
    months: (i32, i32),
) -> Result<Vec<MonthlyRow>> {
    let rows = store.monthly_usage_of(of, months).await?;
    Ok(rows
        .into_iter()
        .map(|(key, usage, names)| {
            let mut row = MonthlyRow::from((key, usage));
            let or_id = |name: Option<String>, what: &str, id: i64| {
                name.unwrap_or_else(|| format!("{what} {id}"))
            };
            row.rule = or_id(names.rule, "rule", row.rule_id);
            row.host_name = or_id(names.host_name, "device", row.device_id);
            row.account = or_id(names.account, "user", row.user_id);
            row
        })
        .collect())
}

/// The hourly rows of `rule` (or every rule) in `[from, to)` (midnights), named; with `sites`,
/// over the devices of these sites only, recomputed from their raw records
/// ([`crate::scope::hours`]).
pub async fn file_usage(
    service: &Service,
    rule: Option<i64>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    sites: Option<&[SiteCode]>,
) -> Result<Vec<FileUsageRow>> {
    let store = service.store();
    let rules = Names::rules(store).await?;
    let rows = match sites {
        Some(sites) => crate::scope::hours(service, rule, (from, to), sites).await?,
        None => store.file_usage_hours(rule, from, to).await?,
    };
    Ok(rows
        .into_iter()
        .map(|hour| FileUsageRow {
            rule: name_of(&rules, "rule", hour.rule_id),
            hour,
        })
        .collect())
}
