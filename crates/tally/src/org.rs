//! `tally org`: the organisation tree's nodes, the rules that place devices and users on them,
//! and placing one by hand, over the API.

use anyhow::Result;
use clap::Subcommand;
use tally_api::Placement;
use tally_core::org::OrgRuleSpec;

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
    match cmd {
        OrgCmd::Nodes => {
            let nodes = client.org_nodes().await?;
            Ok(print(&nodes, &["id", "name", "parent"], api.format)?)
        }
        OrgCmd::Rules => Ok(print(&client.org_rules().await?, RULE_COLUMNS, api.format)?),
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
            Ok(print(&[rule], RULE_COLUMNS, api.format)?)
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
            match (device, user) {
                (Some(id), _) => client.place_device(id, &placement).await?,
                (None, Some(id)) => client.place_user(id, &placement).await?,
                (None, None) => anyhow::bail!("give --device ID or --user ID"),
            }
            eprintln!("placed on {}", node.as_deref().unwrap_or("no node"));
            Ok(())
        }
    }
}

const RULE_COLUMNS: &[&str] = &["id", "org_node", "site", "host_name", "account"];
