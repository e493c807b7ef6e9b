//! `tally org`: the organisation tree's nodes, the rules that place devices and users on them,
//! and placing one by hand, over the API.

use anyhow::Result;
use clap::Subcommand;
use tally_api::{OrgNodeView, Placement};
use tally_core::escape::controls;
use tally_core::org::{OrgRule, OrgRuleSpec};

use crate::admin::ApiArgs;
use crate::output::print_lines;

#[derive(Subcommand, Debug)]
pub enum OrgCmd {
    /// The org nodes with their parents by name (loaded with tally import).
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
        /// The device's host name or id (see tally devices).
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        device: Option<String>,
        /// The user's account or id (see tally users).
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        node: Option<String>,
    },
}

pub async fn org(api: &ApiArgs, cmd: OrgCmd) -> Result<()> {
    let client = api.client()?;
    match cmd {
        OrgCmd::Nodes => {
            let nodes = client.org_nodes().await?;
            let line = |n: &OrgNodeView| serde_json::json!({"id": n.node.id, "name": n.node.name, "parent": n.parent_name});
            Ok(print_lines(
                &nodes,
                &["id", "name", "parent"],
                api.format,
                line,
            )?)
        }
        OrgCmd::Rules => print_rules(api, &client, &client.org_rules().await?).await,
        OrgCmd::AddRule {
            node,
            site,
            host_name,
            account,
        } => {
            let spec = OrgRuleSpec {
                org_node: node,
                site,
                host_name,
                account,
            };
            let rule = client.add_org_rule(&spec).await?;
            print_rules(api, &client, &[rule]).await
        }
        OrgCmd::RemoveRule { id } => {
            client.delete_org_rule(id).await?;
            eprintln!("removed org rule {id}");
            Ok(())
        }
        OrgCmd::Place { device, user, node } => {
            let placement = Placement {
                org_node: node.clone(),
            };
            let placed = match (device, user) {
                (Some(device), _) => {
                    let devices = client.devices().await?;
                    let found = by_name_or_id(&devices, &device, |d| (&d.host_name, d.id));
                    let Some(d) = found else {
                        anyhow::bail!("no device {:?}; see tally devices", controls(&device));
                    };
                    client.place_device(d.id, &placement).await?;
                    d.host_name.clone()
                }
                (None, Some(user)) => {
                    let users = client.users().await?;
                    let Some(u) = by_name_or_id(&users, &user, |u| (&u.account, u.id)) else {
                        anyhow::bail!("no user {:?}; see tally users", controls(&user));
                    };
                    client.place_user(u.id, &placement).await?;
                    u.account.clone()
                }
                (None, None) => anyhow::bail!("give --device HOST or --user ACCOUNT"),
            };
            let node = node.as_deref().unwrap_or("no node (the rules apply again)");
            eprintln!("placed {} on {}", controls(&placed), controls(node));
            Ok(())
        }
    }
}

const RULE_COLUMNS: &[&str] = &["id", "org_node", "site", "host_name", "account"];

/// The row named `wanted` (its name exactly, else any case), or else the one whose id it is.
fn by_name_or_id<'a, T>(
    rows: &'a [T],
    wanted: &str,
    key: impl Fn(&T) -> (&String, i64),
) -> Option<&'a T> {
    let named = |exact: bool| {
        rows.iter().find(|r| match exact {
            true => key(r).0 == wanted,
            false => key(r).0.eq_ignore_ascii_case(wanted),
        })
    };
    let id: Option<i64> = wanted.parse().ok();
    named(true)
        .or_else(|| named(false))
        .or_else(|| rows.iter().find(|r| Some(key(r).1) == id))
}

/// Rules as the table shows them: the node by name.
async fn print_rules(api: &ApiArgs, client: &tally_api::Client, rules: &[OrgRule]) -> Result<()> {
    let nodes = client.org_nodes().await?;
    let line = |r: &OrgRule| {
        let node = nodes.iter().find(|n| n.node.id == r.org_node);
        serde_json::json!({"id": r.id, "org_node": node.map(|n| &n.node.name),
            "site": r.site, "host_name": r.host_name, "account": r.account})
    };
    Ok(print_lines(rules, RULE_COLUMNS, api.format, line)?)
}
