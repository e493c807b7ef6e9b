//! The org tree: every node under its parent, a node moved by picking its new parent (loaded
//! as an import of that one node, so the import's checks refuse a cycle or an unknown parent,
//! and audited), and the placement rules that put devices and users on nodes.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use tally_api::OrgNodeView;
use tally_core::import::{OrgNodeRow, Origin};
use tally_service::import_files::{self, Reading};

use crate::forms::{bounded, csrf_input};
use crate::session::Signed;
use crate::{layout, WebError, WebState};

/// Children by parent id (`None`: the top), each sorted by name.
fn children(nodes: &[OrgNodeView]) -> HashMap<Option<i64>, Vec<&OrgNodeView>> {
    let mut by: HashMap<Option<i64>, Vec<&OrgNodeView>> = HashMap::new();
    for n in nodes {
        by.entry(n.node.parent).or_default().push(n);
    }
    for list in by.values_mut() {
        list.sort_by_key(|n| n.node.name.to_lowercase());
    }
    by
}

/// The nodes under `parent`, nested; `depth` stops a cycle the store should never hold.
fn tree(by: &HashMap<Option<i64>, Vec<&OrgNodeView>>, parent: Option<i64>, depth: usize) -> Markup {
    html! {
        @if let Some(list) = by.get(&parent).filter(|_| depth < 64) {
            ul { @for n in list { li { span.node { (n.node.name) } (tree(by, Some(n.node.id), depth + 1)) } } }
        }
    }
}

fn move_form(signed: &Signed, nodes: &[OrgNodeView]) -> Markup {
    let mut names: Vec<&str> = nodes.iter().map(|n| n.node.name.as_str()).collect();
    names.sort_by_key(|n| n.to_lowercase());
    html! {
        form.filters #move-form method="post" action="/org/move" {
            (csrf_input(&signed.csrf()))
            label for="node" { "Move" }
            select #node name="node" required { option value="" { "— choose a node —" } @for n in &names { option value=(n) { (n) } } }
            label for="parent" { "under" }
            select #parent name="parent" { option value="" { "— the top (no parent) —" } @for n in &names { option value=(n) { (n) } } }
            button type="submit" { "Move" }
        }
    }
}

async fn render(
    state: &WebState,
    signed: &Signed,
    problems: &[String],
) -> Result<Markup, WebError> {
    let store = state.service.store();
    let nodes = tally_service::org::nodes(store).await?;
    let names: HashMap<i64, String> = nodes
        .iter()
        .map(|n| (n.node.id, n.node.name.clone()))
        .collect();
    let rules = store.org_rules().await?;
    let by = children(&nodes);
    let text = |t: &Option<String>| t.clone().unwrap_or_else(|| "—".into());
    Ok(html! {
        @for p in problems { p.error role="alert" { (p) } }
        @if signed.is_admin() && !nodes.is_empty() { (move_form(signed, &nodes)) }
        section #org-tree { @if nodes.is_empty() { p { "No org nodes yet: import org_nodes.csv." } } (tree(&by, None, 0)) }
        h2 { "Placement rules" }
        p.hint { "Devices and users not placed by hand or by the import go to the node of the first rule that matches, oldest first. Patterns take * and ? and ignore case." }
        table #org-rules {
            thead { tr { th { "Order" } th { "Node" } th { "Site" } th { "Host name" } th { "Account" } } }
            tbody {
                @for (i, r) in rules.iter().enumerate() {
                    tr { td.num { (i + 1) } td { (names.get(&r.org_node).cloned().unwrap_or_default()) } td { (text(&r.site)) } td { (text(&r.host_name)) } td { (text(&r.account)) } }
                }
                @if rules.is_empty() { tr { td colspan="5" { "No placement rules (tally org rules add makes one)." } } }
            }
        }
    })
}

pub async fn page(State(state): State<WebState>, signed: Signed) -> Result<Response, WebError> {
    let body = render(&state, &signed, &[]).await?;
    Ok(layout::page(&signed, "/org", "Org tree", body).into_response())
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    node: String,
    #[serde(default)]
    parent: String,
}

pub async fn move_node(
    State(state): State<WebState>,
    signed: Signed,
    Form(form): Form<MoveForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    for (field, value) in [("node", &form.node), ("parent", &form.parent)] {
        bounded(field, value).map_err(|(f, why)| WebError::BadRequest(format!("{f}: {why}")))?;
    }
    let known = tally_service::org::nodes(state.service.store()).await?;
    let exists = |name: &str| known.iter().any(|n| n.node.name == name);
    if !exists(&form.node) {
        return Err(WebError::BadRequest(
            "node: choose a node of the tree".into(),
        ));
    }
    let parent = Some(form.parent.clone()).filter(|p| !p.is_empty());
    if parent.as_deref().is_some_and(|p| !exists(p)) {
        return Err(WebError::BadRequest(
            "parent: choose a node of the tree".into(),
        ));
    }
    let mut reading = Reading::default();
    let origin = Origin {
        file: "org tree".into(),
        line: 1,
    };
    reading.batch.org_nodes.push((
        origin,
        OrgNodeRow {
            name: form.node.clone(),
            parent,
        },
    ));
    let (checked, outcome) =
        import_files::load(&state.service, signed.name(), "org.move", reading).await?;
    if outcome.is_some() {
        return Ok(Redirect::to("/org").into_response());
    }
    let problems: Vec<String> = checked
        .errors
        .iter()
        .map(|e| format!("{} cannot move: {}", form.node, e.message))
        .collect();
    let body = render(&state, &signed, &problems).await?;
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        layout::page(&signed, "/org", "Org tree", body),
    )
        .into_response())
}
