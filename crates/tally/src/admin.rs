//! CLI verbs over the admin API (`TALLY_URL`, `TALLY_TOKEN`).

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::Serialize;
use tally_api::{Client, CreateEnrollmentToken, CreateToken};
use tally_core::autorules::AutoRuleSettings;
use tally_core::rules::RuleSpec;
use tally_core::MeteringRule;

use crate::output::{print, print_lines, Format};

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
