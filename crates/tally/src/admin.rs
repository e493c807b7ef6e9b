//! CLI verbs over the admin API (`TALLY_URL`, `TALLY_TOKEN`).

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::Serialize;
use serde_json::{json, Value};
use tally_api::{Client, CreateEnrollmentToken, CreateToken, UsageFilter};
use tally_core::autorules::AutoRuleSettings;
use tally_core::escape;
use tally_core::rules::RuleSpec;
use tally_core::{Device, DeviceStatus, MeteringRule, RuleIndex, UsageRecord, User};

use crate::output::{duration_text, print, print_lines, print_value, time_text, Format};

/// Where the server is and how to reach it.
#[derive(Args, Debug, Clone)]
pub struct ServerConn {
    /// Server URL.
    #[arg(
        long,
        env = "TALLY_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// Operator token.
    #[arg(long, env = "TALLY_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// PEM file of a CA to trust besides the system roots (for a private CA).
    #[arg(long, env = "TALLY_CA_FILE", global = true)]
    pub ca_file: Option<std::path::PathBuf>,
}

impl ServerConn {
    pub fn client(&self) -> Result<Client> {
        Ok(Client::new(
            &self.url,
            self.token.clone(),
            self.ca_file.as_deref(),
        )?)
    }
}

/// Reads an option's text as the API type the server reads it as (a metric, a role, a date),
/// refusing a typo in the words the server's JSON reader would have used.
pub fn typed<T: DeserializeOwned>(field: &str, text: &str) -> Result<T> {
    let text: serde::de::value::StrDeserializer<serde::de::value::Error> = text.into_deserializer();
    T::deserialize(text).map_err(|e| anyhow!("{field}: {e}"))
}

/// [`typed`] for an option that may be absent.
pub fn typed_opt<T: DeserializeOwned>(field: &str, text: Option<String>) -> Result<Option<T>> {
    text.map(|t| typed(field, &t)).transpose()
}

/// Where the server is and how to print: shared by every admin verb.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    #[command(flatten)]
    pub conn: ServerConn,
    /// Output: an aligned table, or JSON/CSV with the API's field names.
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub format: Format,
}

impl ApiArgs {
    pub fn client(&self) -> Result<Client> {
        self.conn.client()
    }
}

/// Rule fields; on `add`, `--name` and a file name are required, on `edit` all are optional.
#[derive(Args, Debug, Clone, Default)]
pub struct RuleFields {
    #[arg(long)]
    name: Option<String>,
    /// Executable name as started, e.g. code (no wildcards).
    #[arg(long)]
    file_name: Option<String>,
    /// Real file name behind links, e.g. python3.11.
    #[arg(long)]
    original_file_name: Option<String>,
    /// Version pattern with * and ?, e.g. 1.*.
    #[arg(long)]
    file_version: Option<String>,
    /// Language id; 65535 = any.
    #[arg(long)]
    language: Option<i32>,
    #[arg(long)]
    product_name: Option<String>,
    #[arg(long)]
    comment: Option<String>,
    /// Also meter on every child site.
    #[arg(long, overrides_with = "no_apply_to_child_sites")]
    apply_to_child_sites: bool,
    /// Meter only on the site that made the rule.
    #[arg(long)]
    no_apply_to_child_sites: bool,
}

impl RuleFields {
    /// Sets the fields given on the command line; the others stay as they are.
    fn apply(&self, rule: &mut RuleSpec) {
        let text = [
            (&mut rule.name, &self.name),
            (&mut rule.file_name, &self.file_name),
            (&mut rule.original_file_name, &self.original_file_name),
            (&mut rule.file_version, &self.file_version),
            (&mut rule.product_name, &self.product_name),
            (&mut rule.comment, &self.comment),
        ];
        for (field, value) in text {
            if let Some(v) = value {
                field.clone_from(v);
            }
        }
        if let Some(l) = self.language {
            rule.language = l;
        }
        if self.apply_to_child_sites {
            rule.apply_to_child_sites = true;
        }
        if self.no_apply_to_child_sites {
            rule.apply_to_child_sites = false;
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    /// List every rule.
    List,
    /// Create a rule.
    Add(RuleFields),
    /// Change fields of a rule (by id or name).
    Edit {
        rule: String,
        #[command(flatten)]
        fields: RuleFields,
    },
    /// Start metering with a rule.
    Enable { rule: String },
    /// Stop metering with a rule, keeping it.
    Disable { rule: String },
    /// Delete a rule.
    Delete { rule: String },
    /// Create disabled rules for software on at least --percent of inventoried devices.
    Auto {
        /// Share of devices a program must be installed on.
        #[arg(long, default_value_t = 10.0)]
        percent: f64,
        /// Most automatic rules in all.
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
}

const RULE_COLUMNS: &[&str] = &[
    "id",
    "name",
    "file_name",
    "original_file_name",
    "file_version",
    "product_name",
    "enabled",
    "apply_to_child_sites",
    "site_code",
    "origin",
];

/// The rule with this id or (case-insensitive) name.
async fn find_rule(client: &Client, key: &str) -> Result<MeteringRule> {
    let rules = client.rules().await?;
    let found = rules
        .into_iter()
        .find(|r| r.id.to_string() == key || r.spec.name.eq_ignore_ascii_case(key));
    match found {
        Some(r) => Ok(r),
        None => bail!("no rule with id or name {key:?}; see tally rules list"),
    }
}

/// Changes a stored rule's editable fields and PUTs them back.
async fn put_rule(
    client: &Client,
    key: &str,
    edit: impl FnOnce(&mut RuleSpec),
) -> Result<MeteringRule> {
    let mut rule = find_rule(client, key).await?;
    edit(&mut rule.spec);
    Ok(client.update_rule(rule.id, &rule.spec).await?)
}

pub async fn rules(api: &ApiArgs, cmd: RulesCmd) -> Result<()> {
    let client = api.client()?;
    let changed = match cmd {
        RulesCmd::List => {
            let rules = client.rules().await?;
            return Ok(print(&rules, RULE_COLUMNS, api.format)?);
        }
        RulesCmd::Add(fields) => {
            let Some(name) = fields.name.clone() else {
                bail!("a rule needs --name");
            };
            let mut spec = RuleSpec::named(name);
            fields.apply(&mut spec);
            client.create_rule(&spec).await?
        }
        RulesCmd::Edit { rule, fields } => put_rule(&client, &rule, |r| fields.apply(r)).await?,
        RulesCmd::Enable { rule } => put_rule(&client, &rule, |r| r.enabled = true).await?,
        RulesCmd::Disable { rule } => put_rule(&client, &rule, |r| r.enabled = false).await?,
        RulesCmd::Auto { percent, max } => {
            let settings = AutoRuleSettings {
                min_percent_of_devices: percent,
                max_automatic_rules: max,
            };
            let created = client.auto_rules(&settings).await?;
            return Ok(print(&created, RULE_COLUMNS, api.format)?);
        }
        RulesCmd::Delete { rule } => {
            let rule = find_rule(&client, &rule).await?;
            client.delete_rule(rule.id).await?;
            // What was deleted, without the stored rule's id, site and origin.
            return Ok(print(&[rule.spec], RULE_COLUMNS, api.format)?);
        }
    };
    Ok(print(&[changed], RULE_COLUMNS, api.format)?)
}

#[derive(Subcommand, Debug)]
pub enum TokensCmd {
    /// List operator tokens (never their secrets).
    List,
    /// Create an operator token; its secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// admin (everything) or auditor (read-only).
        #[arg(long, default_value = "auditor")]
        role: String,
    },
    /// Revoke an operator token by id.
    Revoke { id: i64 },
}

/// An operator token as the table shows it: times to the second; the secret only when it was
/// just created (never stored, so a list has none to show).
#[derive(Serialize)]
struct TokenLine<'a> {
    id: i64,
    name: &'a str,
    role: tally_core::Role,
    created: String,
    revoked: Option<String>,
    token: Option<&'a str>,
}

impl<'a> TokenLine<'a> {
    fn of(t: &'a tally_core::OperatorToken, token: Option<&'a str>) -> Self {
        TokenLine {
            id: t.id,
            name: &t.name,
            role: t.role,
            created: crate::output::time_text(t.created_at),
            revoked: t.revoked_at.map(crate::output::time_text),
            token,
        }
    }
}

pub async fn tokens(api: &ApiArgs, cmd: TokensCmd) -> Result<()> {
    let client = api.client()?;
    match cmd {
        TokensCmd::List => {
            let columns = &["id", "name", "role", "created", "revoked"];
            let rows = client.tokens().await?;
            Ok(print_lines(&rows, columns, api.format, |t| {
                TokenLine::of(t, None)
            })?)
        }
        TokensCmd::Create { name, role } => {
            let role = typed("role", &role)?;
            let created = client.create_token(&CreateToken { name, role }).await?;
            let columns = &["id", "name", "role", "created", "token"];
            Ok(print_lines(&[created], columns, api.format, |c| {
                TokenLine::of(&c.info, Some(&c.token))
            })?)
        }
        TokensCmd::Revoke { id } => {
            client.revoke_token(id).await?;
            eprintln!("revoked token {id}");
            Ok(())
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum EnrollmentCmd {
    /// List enrolment tokens.
    List,
    /// Create an enrolment token for agents; its secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// Site the agents join [default: the server's site].
        #[arg(long)]
        site: Option<String>,
        /// Refuse enrolments from this time on (RFC 3339) [default: 7 days from now].
        #[arg(long)]
        expires: Option<String>,
        /// Refuse enrolments after this many.
        #[arg(long)]
        max_uses: Option<i32>,
    },
    /// Revoke an enrolment token by id (agents already enrolled keep working).
    Revoke { id: i64 },
}

pub async fn enrollment(api: &ApiArgs, cmd: EnrollmentCmd) -> Result<()> {
    let client = api.client()?;
    let columns = &[
        "id",
        "name",
        "site_code",
        "uses",
        "max_uses",
        "expires_at",
        "revoked_at",
        "token",
    ];
    match cmd {
        EnrollmentCmd::List => Ok(print(
            &client.enrollment_tokens().await?,
            columns,
            api.format,
        )?),
        EnrollmentCmd::Create {
            name,
            site,
            expires,
            max_uses,
        } => {
            let req = CreateEnrollmentToken {
                name,
                site_code: typed_opt("site_code", site)?,
                expires_at: typed_opt("expires_at", expires)?,
                max_uses,
            };
            let created = client.create_enrollment_token(&req).await?;
            if let Some(at) = created.info.expires_at {
                eprintln!("accepts enrolments until {at} (choose with --expires)");
            }
            Ok(print(&[created], columns, api.format)?)
        }
        EnrollmentCmd::Revoke { id } => {
            client.revoke_enrollment_token(id).await?;
            eprintln!("revoked enrolment token {id}");
            Ok(())
        }
    }
}

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
async fn user_id(client: &Client, key: &str) -> Result<i64> {
    let users = client.users().await?;
    let by_id = key.parse::<i64>().ok();
    users
        .iter()
        .find(|u| u.account.eq_ignore_ascii_case(key))
        .or_else(|| users.iter().find(|u| Some(u.id) == by_id))
        .map(|u| u.id)
        .ok_or_else(|| anyhow!("no user with account or id {key:?}; see tally users"))
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
