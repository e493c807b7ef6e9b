//! The organisation tree changed by an operator: the rules that place devices and users on
//! nodes, and placing one by hand. Each change is stored with its audit entry in one
//! transaction.

use tally_api::{OrgNodeView, Placement};
use tally_core::org::{OrgRule, OrgRuleSpec, OrgTarget};

use crate::audit::{entry, OrMissing};
use crate::{Result, Service, ServiceError};

/// Every org node with its parent's name.
pub async fn nodes(store: &dyn tally_store::Store) -> Result<Vec<OrgNodeView>> {
    let nodes = store.org_nodes().await?;
    let names: std::collections::HashMap<i64, String> =
        nodes.iter().map(|n| (n.id, n.name.clone())).collect();
    Ok(nodes
        .into_iter()
        .map(|node| OrgNodeView {
            parent_name: node.parent.and_then(|p| names.get(&p).cloned()),
            node,
        })
        .collect())
}

/// The id of the node called `name`, or why there is none.
async fn node_id(service: &Service, name: &str) -> Result<i64> {
    service
        .store()
        .org_nodes()
        .await?
        .into_iter()
        .find(|n| n.name == name)
        .map(|n| n.id)
        .ok_or_else(|| {
            ServiceError::Invalid(format!(
                "org_node: no org node named {name:?}; see tally org nodes (nodes are loaded with tally import)"
            ))
        })
}

/// Adds a placement rule, as `actor`; blank patterns count as none.
pub async fn add_rule(service: &Service, actor: &str, spec: &OrgRuleSpec) -> Result<OrgRule> {
    spec.validate()?;
    let text = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let rule = OrgRule {
        id: 0,
        org_node: node_id(service, &spec.org_node).await?,
        site: text(&spec.site),
        host_name: text(&spec.host_name),
        account: text(&spec.account),
    };
    let audit =
        |rule: &OrgRule| entry(actor, "org_rule.add", format!("org_rule:{}", rule.id), spec);
    Ok(service.store().add_org_rule(&rule, Some(&audit)).await?)
}

/// Deletes placement rule `id`, as `actor`.
pub async fn delete_rule(service: &Service, actor: &str, id: i64) -> Result<()> {
    let audit = entry(actor, "org_rule.delete", format!("org_rule:{id}"), ());
    (service.store().delete_org_rule(id, Some(&audit)).await)
        .or_missing(|| format!("no org rule {id}; see tally org rules"))
}

/// Places a device or user on the node `placement` names, or takes it off its node, as
/// `actor`.
pub async fn place(
    service: &Service,
    actor: &str,
    target: OrgTarget,
    placement: &Placement,
) -> Result<()> {
    let node = match &placement.org_node {
        Some(name) => Some(node_id(service, name).await?),
        None => None,
    };
    let (what, id) = match target {
        OrgTarget::Device(id) => ("device", id),
        OrgTarget::User(id) => ("user", id),
    };
    let action = format!("{what}.place");
    let audit = entry(actor, &action, format!("{what}:{id}"), placement);
    (service
        .store()
        .set_org_node(target, node, Some(&audit))
        .await)
        .or_missing(|| format!("no {what} {id}; see tally {what}s"))
}
