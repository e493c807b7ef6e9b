//! CLI verbs over the estate: devices, the agents on them and the users they run programs for.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use serde::Serialize;
use serde_json::{json, Value};
use tally_api::Client;
use tally_core::escape;
use tally_core::{Device, DeviceStatus, User};

use crate::admin::{typed, ApiArgs};
use crate::output::{print, print_lines, print_value, time_text, Format};
/// `tally devices` lists; its verbs change one device. Devices are named by host name or id.
#[derive(Subcommand, Debug)]
pub enum DevicesCmd {
    /// Every device (the default).
    List,
    /// Set a device's status: active, in_repair (both count for licensing), in_stock or
    /// retired (neither counts). Audit-logged; positions on earlier days keep the old status.
    SetStatus { device: String, status: String },
    /// Retire a device: it no longer counts for licensing (set-status DEVICE retired).
    Retire { device: String },
    /// Merge two records of one machine: FROM's usage, inventory and its history,
    /// installations, agents and computer-assigned licenses move to INTO; FROM is deleted.
    /// INTO keeps its status and placement (or takes FROM's placement if it has none).
    Merge { from: String, into: String },
}

/// A device as tables show it: names, the org node by name, times to the second.
fn device_line(d: &Device, nodes: &HashMap<i64, String>) -> Value {
    json!({
        "host": d.host_name, "status": d.status.as_str(),
        "org_node": d.org_node.map(|n| nodes.get(&n).cloned().unwrap_or_else(|| format!("node {n}"))),
        "os": d.os, "sockets": d.sockets, "cores": d.cores,
        "serial": d.serial, "machine_id": d.machine_id.as_deref().map(short_id),
        "last_seen": d.last_seen.map(time_text), "id": d.id,
    })
}

/// The first 8 characters of a machine-id: enough to tell machines apart in a table.
fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

const DEVICE_COLUMNS: &[&str] = &[
    "host",
    "status",
    "org_node",
    "os",
    "sockets",
    "cores",
    "serial",
    "machine_id",
    "last_seen",
    "id",
];

/// Org node names by id, for rows that carry a node id.
async fn node_names(client: &Client) -> Result<HashMap<i64, String>> {
    let nodes = client.org_nodes().await?;
    Ok(nodes
        .into_iter()
        .map(|n| (n.node.id, n.node.name))
        .collect())
}

pub async fn devices(
    api: &ApiArgs,
    inventory: Option<String>,
    cmd: Option<DevicesCmd>,
) -> Result<()> {
    let client = api.client()?;
    if let Some(key) = inventory {
        return device_inventory(api, &client, &key).await;
    }
    let nodes = node_names(&client).await?;
    let changed = match cmd.unwrap_or(DevicesCmd::List) {
        DevicesCmd::List => {
            let rows = client.devices().await?;
            let line = |d: &Device| device_line(d, &nodes);
            return Ok(print_lines(&rows, DEVICE_COLUMNS, api.format, line)?);
        }
        DevicesCmd::SetStatus { device, status } => {
            let status = typed("status", &status)?;
            let id = device_id(&client, &device).await?;
            client.set_device_status(id, status).await?
        }
        DevicesCmd::Retire { device } => {
            let id = device_id(&client, &device).await?;
            client.set_device_status(id, DeviceStatus::Retired).await?
        }
        DevicesCmd::Merge { from, into } => return merge_devices(api, &client, &from, &into).await,
    };
    eprintln!(
        "{} is now {}",
        escape::controls(&changed.host_name),
        changed.status.as_str()
    );
    let line = |d: &Device| device_line(d, &nodes);
    Ok(print_lines(&[changed], DEVICE_COLUMNS, api.format, line)?)
}

async fn merge_devices(api: &ApiArgs, client: &Client, from: &str, into: &str) -> Result<()> {
    let from = device_id(client, from).await?;
    let into = device_id(client, into).await?;
    let merged = client.merge_devices(from, into).await?;
    if api.format == Format::Json {
        return Ok(print_value(&merged)?);
    }
    eprintln!(
        "merged device {} ({}) into {} ({}); {} is gone",
        merged.from_id,
        escape::controls(&merged.from_host_name),
        merged.into_id,
        escape::controls(&merged.into_host_name),
        merged.from_id
    );
    let moved = [
        ("usage records", merged.usage_records),
        ("usage sessions", merged.usage_sessions),
        ("installations", merged.installations),
        ("agents", merged.agents),
        ("computer licenses", merged.licenses),
    ];
    let rows: Vec<Value> = moved
        .iter()
        .map(|(what, n)| json!({"moved": what, "count": n}))
        .collect();
    Ok(print(&rows, &["moved", "count"], api.format)?)
}

async fn device_inventory(api: &ApiArgs, client: &Client, key: &str) -> Result<()> {
    let id = device_id(client, key).await?;
    let inventory = client.device_inventory(id).await?;
    if api.format == Format::Json {
        return Ok(print_value(&inventory)?);
    }
    print(
        &inventory.software,
        &["name", "version", "publisher", "executables"],
        api.format,
    )?;
    println!();
    let columns = &["name", "uid", "full_name", "service_account", "reason"];
    Ok(print(&inventory.accounts, columns, api.format)?)
}

/// An enrolled agent with its device's host name, for people to read.
#[derive(Serialize)]
struct AgentView<'a> {
    #[serde(flatten)]
    agent: &'a tally_core::agents::Agent,
    host_name: Option<String>,
}

pub async fn agents(api: &ApiArgs) -> Result<()> {
    let client = api.client()?;
    let rows = client.agents().await?;
    let hosts: HashMap<i64, String> = client
        .devices()
        .await?
        .into_iter()
        .map(|d| (d.id, d.host_name))
        .collect();
    let views: Vec<AgentView> = rows
        .iter()
        .map(|agent| AgentView {
            agent,
            host_name: hosts.get(&agent.device_id).cloned(),
        })
        .collect();
    let columns = &[
        "host",
        "agent",
        "version",
        "enrolled",
        "last_heartbeat",
        "dropped_records",
        "revoked",
    ];
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(time_text).unwrap_or_default();
    print_lines(&views, columns, api.format, |v| {
        json!({
            "host": v.host_name.clone().unwrap_or_else(|| format!("device {}", v.agent.device_id)),
            "agent": v.agent.id,
            "version": v.agent.agent_version,
            "enrolled": time_text(v.agent.enrolled_at),
            "last_heartbeat": when(v.agent.last_heartbeat),
            "dropped_records": v.agent.dropped_records,
            "revoked": when(v.agent.revoked_at),
        })
    })?;
    Ok(())
}

/// `tally users` lists; its verbs classify one account, erase one person or resolve one
/// pseudonym.
#[derive(Subcommand, Debug)]
pub enum UsersCmd {
    /// Every user (the default), with whether it is a service account and why.
    List,
    /// Decide whether an account is a service account (never licensable): yes or no win over
    /// inventory and import and survive new inventories; auto hands the decision back.
    /// Audit-logged.
    Set {
        account: String,
        #[arg(long, value_parser = ["yes", "no", "auto"])]
        service_account: String,
    },
    /// Erase one person: the account becomes forgotten-ID without a full name, its local
    /// accounts leave every inventory; its usage is kept for compliance. Audit-logged.
    Forget { account: String },
    /// The account behind a pseudonym (sites with pseudonymize_users). Audit-logged.
    Resolve { pseudonym: String },
}

/// Why a user is or is not a service account, in words.
fn service_account_why(u: &User) -> String {
    let reason = u.service_account_reason.as_deref();
    match (u.service_account_set_by_admin, reason) {
        (Some(_), Some(r)) => format!("set by admin (Tally said: {r})"),
        (Some(_), None) => "set by admin".to_string(),
        (None, Some(r)) => r.to_string(),
        (None, None) => "no inventory or import says; counted as a person".to_string(),
    }
}

const USER_COLUMNS: &[&str] = &[
    "account",
    "full_name",
    "service_account",
    "why",
    "status",
    "org_node",
    "id",
];

fn user_line(u: &User, nodes: &HashMap<i64, String>) -> Value {
    json!({
        "account": u.account, "full_name": u.full_name,
        "service_account": if u.service_account { "yes" } else { "no" },
        "why": service_account_why(u), "status": u.status.as_str(),
        "org_node": u.org_node.map(|n| nodes.get(&n).cloned().unwrap_or_else(|| format!("node {n}"))),
        "id": u.id,
    })
}

pub async fn users(api: &ApiArgs, cmd: Option<UsersCmd>) -> Result<()> {
    let client = api.client()?;
    match cmd.unwrap_or(UsersCmd::List) {
        UsersCmd::List => {
            let rows = client.users().await?;
            let nodes = node_names(&client).await?;
            let line = |u: &User| user_line(u, &nodes);
            Ok(print_lines(&rows, USER_COLUMNS, api.format, line)?)
        }
        UsersCmd::Set {
            account,
            service_account,
        } => {
            let choice = typed("service_account", &service_account)?;
            let user = client.set_service_account(&account, choice).await?;
            let nodes = node_names(&client).await?;
            let line = |u: &User| user_line(u, &nodes);
            Ok(print_lines(&[user], USER_COLUMNS, api.format, line)?)
        }
        UsersCmd::Forget { account } => {
            let forgotten = client.forget_user(&account).await?;
            let columns = &["user_id", "local_accounts"];
            Ok(print(&[forgotten], columns, api.format)?)
        }
        UsersCmd::Resolve { pseudonym } => {
            let resolved = client.resolve_pseudonym(&pseudonym).await?;
            Ok(print(&[resolved], &["pseudonym", "account"], api.format)?)
        }
    }
}

/// The id of the one device with this host name (case-insensitive) or id.
pub async fn device_id(client: &Client, key: &str) -> Result<i64> {
    let devices = client.devices().await?;
    let by_id = key.parse::<i64>().ok();
    let found: Vec<&Device> = devices
        .iter()
        .filter(|d| Some(d.id) == by_id || d.host_name.eq_ignore_ascii_case(key))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.id),
        [] => bail!("no device with host name or id {key:?}; see tally devices"),
        many => {
            let ids: Vec<String> = many.iter().map(|d| d.id.to_string()).collect();
            bail!(
                "{} devices are named {key:?} (ids {}); give the id, or merge them with \
                 tally devices merge FROM INTO",
                many.len(),
                ids.join(", ")
            )
        }
    }
}

/// The id of the user with this account (case-insensitive) or id.
pub async fn user_id(client: &Client, key: &str) -> Result<i64> {
    let users = client.users().await?;
    let by_id = key.parse::<i64>().ok();
    users
        .iter()
        .find(|u| u.account.eq_ignore_ascii_case(key))
        .or_else(|| users.iter().find(|u| Some(u.id) == by_id))
        .map(|u| u.id)
        .ok_or_else(|| anyhow!("no user with account or id {key:?}; see tally users"))
}
