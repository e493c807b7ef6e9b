//! CLI verbs over the admin API (`TALLY_URL`, `TALLY_TOKEN`).

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::client::Client;
use crate::output::{print, print_value, Format};

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
        Client::new(&self.url, self.token.clone(), self.ca_file.as_deref())
    }
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

/// Prints a JSON array the API returned (anything else prints as an empty list).
fn print_list(value: &Value, columns: &[&str], format: Format) -> std::io::Result<()> {
    print(
        value.as_array().map_or(&[][..], Vec::as_slice),
        columns,
        format,
    )
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
    fn apply(&self, rule: &mut Map<String, Value>) {
        let text = [
            ("name", &self.name),
            ("file_name", &self.file_name),
            ("original_file_name", &self.original_file_name),
            ("file_version", &self.file_version),
            ("product_name", &self.product_name),
            ("comment", &self.comment),
        ];
        for (key, value) in text {
            if let Some(v) = value {
                rule.insert(key.into(), json!(v));
            }
        }
        if let Some(l) = self.language {
            rule.insert("language".into(), json!(l));
        }
        if self.apply_to_child_sites {
            rule.insert("apply_to_child_sites".into(), json!(true));
        }
        if self.no_apply_to_child_sites {
            rule.insert("apply_to_child_sites".into(), json!(false));
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
async fn find_rule(client: &Client, key: &str) -> Result<Map<String, Value>> {
    let rules = client.get("/api/v1/rules").await?;
    let found = rules.as_array().into_iter().flatten().find(|r| {
        r["id"].as_i64().map(|i| i.to_string()).as_deref() == Some(key)
            || r["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(key))
    });
    match found.and_then(Value::as_object) {
        Some(r) => Ok(r.clone()),
        None => bail!("no rule with id or name {key:?}; see tally rules list"),
    }
}

/// The editable part of a stored rule, ready to PUT back.
fn spec_of(mut rule: Map<String, Value>) -> (i64, Value) {
    let id = rule["id"].as_i64().unwrap_or_default();
    for k in ["id", "site_code", "origin", "updated_at"] {
        rule.remove(k);
    }
    (id, Value::Object(rule))
}

async fn put_rule(
    client: &Client,
    key: &str,
    edit: impl FnOnce(&mut Map<String, Value>),
) -> Result<Value> {
    let mut rule = find_rule(client, key).await?;
    edit(&mut rule);
    let (id, spec) = spec_of(rule);
    client
        .call(Method::PUT, &format!("/api/v1/rules/{id}"), Some(&spec))
        .await
}

pub async fn rules(api: &ApiArgs, cmd: RulesCmd) -> Result<()> {
    let client = api.client()?;
    let changed = match cmd {
        RulesCmd::List => {
            let rules = client.get("/api/v1/rules").await?;
            return Ok(print_list(&rules, RULE_COLUMNS, api.format)?);
        }
        RulesCmd::Add(fields) => {
            if fields.name.is_none() {
                bail!("a rule needs --name");
            }
            let mut rule = Map::new();
            rule.insert("apply_to_child_sites".into(), json!(false));
            fields.apply(&mut rule);
            client
                .call(Method::POST, "/api/v1/rules", Some(&Value::Object(rule)))
                .await?
        }
        RulesCmd::Edit { rule, fields } => put_rule(&client, &rule, |r| fields.apply(r)).await?,
        RulesCmd::Enable { rule } => {
            put_rule(&client, &rule, |r| {
                r.insert("enabled".into(), json!(true));
            })
            .await?
        }
        RulesCmd::Disable { rule } => {
            put_rule(&client, &rule, |r| {
                r.insert("enabled".into(), json!(false));
            })
            .await?
        }
        RulesCmd::Auto { percent, max } => {
            let body = json!({"min_percent_of_devices": percent, "max_automatic_rules": max});
            let created = client
                .call(Method::POST, "/api/v1/rules/auto", Some(&body))
                .await?;
            return Ok(print_list(&created, RULE_COLUMNS, api.format)?);
        }
        RulesCmd::Delete { rule } => {
            let (id, spec) = spec_of(find_rule(&client, &rule).await?);
            client
                .call(Method::DELETE, &format!("/api/v1/rules/{id}"), None)
                .await?;
            spec
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

pub async fn tokens(api: &ApiArgs, cmd: TokensCmd) -> Result<()> {
    let client = api.client()?;
    let columns = &["id", "name", "role", "created_at", "revoked_at", "token"];
    let rows = match cmd {
        TokensCmd::List => client.get("/api/v1/tokens").await?,
        TokensCmd::Create { name, role } => {
            let body = json!({"name": name, "role": role});
            json!([client
                .call(Method::POST, "/api/v1/tokens", Some(&body))
                .await?])
        }
        TokensCmd::Revoke { id } => {
            client
                .call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
                .await?;
            eprintln!("revoked token {id}");
            return Ok(());
        }
    };
    Ok(print_list(&rows, columns, api.format)?)
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
        /// Refuse enrolments from this time on (RFC 3339).
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
    let rows = match cmd {
        EnrollmentCmd::List => client.get("/api/v1/enrollment-tokens").await?,
        EnrollmentCmd::Create {
            name,
            site,
            expires,
            max_uses,
        } => {
            let body = json!({"name": name, "site_code": site, "expires_at": expires, "max_uses": max_uses});
            json!([client
                .call(Method::POST, "/api/v1/enrollment-tokens", Some(&body))
                .await?])
        }
        EnrollmentCmd::Revoke { id } => {
            client
                .call(
                    Method::DELETE,
                    &format!("/api/v1/enrollment-tokens/{id}"),
                    None,
                )
                .await?;
            eprintln!("revoked enrolment token {id}");
            return Ok(());
        }
    };
    Ok(print_list(&rows, columns, api.format)?)
}

pub async fn devices(api: &ApiArgs, inventory: Option<i64>) -> Result<()> {
    let client = api.client()?;
    let Some(id) = inventory else {
        let rows = client.get_all("/api/v1/devices").await?;
        let columns = &[
            "id",
            "host_name",
            "site_code",
            "os",
            "sockets",
            "cores",
            "status",
            "last_seen",
        ];
        return Ok(print(&rows, columns, api.format)?);
    };
    let inventory = client
        .get(&format!("/api/v1/devices/{id}/inventory"))
        .await?;
    if api.format == Format::Json {
        return Ok(print_value(&inventory)?);
    }
    let list = |key: &str| inventory[key].as_array().cloned().unwrap_or_default();
    print(
        &list("software"),
        &["name", "version", "publisher", "executables"],
        api.format,
    )?;
    println!();
    let columns = &["name", "uid", "full_name", "service_account", "reason"];
    Ok(print(&list("accounts"), columns, api.format)?)
}

pub async fn agents(api: &ApiArgs) -> Result<()> {
    let rows = api.client()?.get("/api/v1/agents").await?;
    let rows = rows.as_array().cloned().unwrap_or_default();
    let columns = &[
        "id",
        "device_id",
        "last_heartbeat",
        "agent_version",
        "dropped_records",
        "revoked_at",
    ];
    Ok(print(&rows, columns, api.format)?)
}

pub async fn users(api: &ApiArgs) -> Result<()> {
    let rows = api.client()?.get_all("/api/v1/users").await?;
    let columns = &["id", "account", "full_name", "service_account", "status"];
    Ok(print(&rows, columns, api.format)?)
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
    /// Only this device (id).
    #[arg(long)]
    device: Option<i64>,
    /// At most this many rows.
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// Adds `program`, `user` and `host` names to rows that carry only ids, for people to read.
async fn with_names(client: &Client, rows: &mut [Value]) -> Result<()> {
    let index = |rows: Vec<Value>, name: fn(&Value) -> String| -> HashMap<i64, String> {
        rows.iter()
            .filter_map(|r| Some((r["id"].as_i64()?, name(r))))
            .collect()
    };
    let files = index(client.get_all("/api/v1/files").await?, |f| {
        format!(
            "{} {}",
            f["file_name"].as_str().unwrap_or(""),
            f["version"].as_str().unwrap_or("")
        )
        .trim()
        .to_string()
    });
    let users = index(client.get_all("/api/v1/users").await?, |u| {
        cell_str(&u["account"])
    });
    let hosts = index(client.get_all("/api/v1/devices").await?, |d| {
        cell_str(&d["host_name"])
    });
    for row in rows {
        for (id_key, name_key, names) in [
            ("file_id", "program", &files),
            ("user_id", "user", &users),
            ("device_id", "host", &hosts),
        ] {
            let name = row[id_key].as_i64().and_then(|id| names.get(&id)).cloned();
            row[name_key] = json!(name);
        }
    }
    Ok(())
}

fn cell_str(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

pub async fn usage(api: &ApiArgs, args: UsageArgs) -> Result<()> {
    let client = api.client()?;
    let mut query = vec![format!("limit={}", args.limit.clamp(1, 1000))];
    if let Some(r) = &args.rule {
        query.push(format!("rule={}", urlencode(r)));
    }
    if let Some(s) = &args.since {
        query.push(format!("since={}", urlencode(s)));
    }
    if let Some(d) = args.device {
        query.push(format!("device_id={d}"));
    }
    let path = if args.runs {
        "/api/v1/runs"
    } else {
        "/api/v1/usage"
    };
    let value = client.get(&format!("{path}?{}", query.join("&"))).await?;
    let mut rows = value
        .as_array()
        .cloned()
        .context("the server sent no list")?;
    if api.format == Format::Table {
        with_names(&client, &mut rows).await?;
    }
    let columns: &[&str] = if args.runs {
        &[
            "program",
            "user",
            "host",
            "start_time",
            "end_time",
            "usage_seconds",
            "still_running",
            "records",
        ]
    } else {
        &[
            "meter_data_id",
            "program",
            "user",
            "host",
            "start_time",
            "end_time",
            "started",
            "still_running",
            "time_serial",
        ]
    };
    Ok(print(&rows, columns, api.format)?)
}

/// Percent-encodes a query value (letters, digits and `-._~` stay as they are).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
