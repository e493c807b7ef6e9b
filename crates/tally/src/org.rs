//! `tally org`: the organisation tree's nodes, the rules that place devices and users on them,
//! and placing one by hand, over the API.

use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use crate::admin::ApiArgs;
use crate::output::print;

#[derive(Subcommand, Debug)]
pub enum OrgCmd {
    /// The org nodes with their parents (loaded with tally import).
    Nodes,
    /// The placement rules, oldest first: the order they are tried in.
    Rules,
    /// Add a rule placing devices (by --site and/or --host-name pattern) or users (by
    /// --account pattern) on a node, when nothing placed them by hand or import.
    AddRule {
        #[arg(long)]
        node: String,
        #[arg(long)]
        site: Option<String>,
        /// A host-name pattern with `*` and `?`, any case: `lon-*`.
        #[arg(long)]
        host_name: Option<String>,
        /// An account pattern with `*` and `?`, any case: `svc-*`.
        #[arg(long)]
        account: Option<String>,
    },
    /// Delete a rule by id.
    RemoveRule { id: i64 },
    /// Place one device or user on a node by hand (`--node` omitted: take it off its node,
    /// so that the rules apply again).
    Place {
        /// The device's id (see tally devices).
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        device: Option<i64>,
        /// The user's id (see tally users).
        #[arg(long)]
        user: Option<i64>,
        #[arg(long)]
        node: Option<String>,
    },
}

pub async fn org(api: &ApiArgs, cmd: OrgCmd) -> Result<()> {
    let client = api.client()?;
    let (rows, columns): (Value, &[&str]) = match cmd {
        OrgCmd::Nodes => (
            client.get("/api/v1/org-nodes").await?,
            &["id", "name", "parent"],
        ),
        OrgCmd::Rules => (client.get("/api/v1/org-rules").await?, RULE_COLUMNS),
        OrgCmd::AddRule {
            node,
            site,
            host_name,
            account,
        } => {
            let body = json!({"org_node": node, "site": site, "host_name": host_name,
                "account": account});
            let rule = client
                .call(Method::POST, "/api/v1/org-rules", Some(&body))
                .await?;
            (json!([rule]), RULE_COLUMNS)
        }
        OrgCmd::RemoveRule { id } => {
            let path = format!("/api/v1/org-rules/{id}");
            client.call(Method::DELETE, &path, None).await?;
            eprintln!("removed org rule {id}");
            return Ok(());
        }
        OrgCmd::Place { device, user, node } => {
            let path = match (device, user) {
                (Some(id), _) => format!("/api/v1/devices/{id}/org-node"),
                (None, Some(id)) => format!("/api/v1/users/{id}/org-node"),
                (None, None) => anyhow::bail!("give --device ID or --user ID"),
            };
            let body = json!({ "org_node": node });
            client.call(Method::PUT, &path, Some(&body)).await?;
            eprintln!("placed on {}", node.as_deref().unwrap_or("no node"));
            return Ok(());
        }
    };
    let rows = rows.as_array().cloned().unwrap_or_default();
    Ok(print(&rows, columns, api.format)?)
}

const RULE_COLUMNS: &[&str] = &["id", "org_node", "site", "host_name", "account"];
