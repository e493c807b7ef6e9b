//! The org tree: every node under its parent, a node moved by picking its new parent (loaded
//! as an import of that one node, so the import's checks refuse a cycle or an unknown parent,
//! and audited), and the placement rules that put devices and users on nodes.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use tally_api::OrgNodeView;
use tally_core::import::{OrgNodeRow, Origin};
use tally_core::org::OrgRuleSpec;
use tally_service::import_files::{self, Reading};

use crate::admin::button_form;
use crate::apps::{page_number, paged, pager, query, PER_PAGE};
use crate::forms::{bounded, csrf_input, Problems};
use crate::session::{CsrfOnly, Signed};
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

/// Every node in tree order (each after its parent, siblings by name) with its depth;
/// `depth` stops a cycle the store should never hold.
fn flatten<'a>(
    by: &HashMap<Option<i64>, Vec<&'a OrgNodeView>>,
    parent: Option<i64>,
    depth: usize,
    out: &mut Vec<(usize, &'a OrgNodeView)>,
) {
    for n in by.get(&parent).filter(|_| depth < 64).into_iter().flatten() {
        out.push((depth, n));
        flatten(by, Some(n.node.id), depth + 1, out);
    }
}

/// One page of the tree in `flat` from `start`, nested. A page that starts inside a branch
/// first shows the nodes above its first one, marked as continued, so every page reads as a
/// tree from the top. In tree order a node is at most one level below the one before it,
/// which is what lets the lists be opened and closed from the depths alone.
fn tree_page(flat: &[(usize, &OrgNodeView)], start: usize, len: usize) -> Markup {
    let Some(&(first_depth, _)) = flat.get(start) else {
        return html! {};
    };
    let mut shown: Vec<(usize, &OrgNodeView, bool)> = Vec::new();
    let mut want = first_depth;
    for &(depth, n) in flat[..start].iter().rev() {
        if want == 0 {
            break;
        }
        if depth == want - 1 {
            shown.push((depth, n, true));
            want = depth;
        }
    }
    shown.reverse();
    let end = (start + len).min(flat.len());
    shown.extend(flat[start..end].iter().map(|&(d, n)| (d, n, false)));
    let mut out = String::new();
    let mut open = 0;
    for (depth, n, continued) in shown {
        if depth + 1 > open {
            out.push_str("<ul>");
            open += 1;
        } else {
            out.push_str("</li>");
            while open > depth + 1 {
                out.push_str("</ul></li>");
                open -= 1;
            }
        }
        let item = html! {
            li { span.node.continued[continued] { (n.node.name) @if continued { " (continued)" } } }
        };
        let item = item.into_string();
        out.push_str(item.strip_suffix("</li>").unwrap_or(&item));
    }
    out.push_str("</li>");
    for _ in 1..open {
        out.push_str("</ul></li>");
    }
    out.push_str("</ul>");
    maud::PreEscaped(out)
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

/// What the page shows besides the tree: a refused move's problems, and the placement-rule
/// form as typed with its problems.
#[derive(Default)]
struct Shown {
    /// The page of the placement rules.
    page: String,
    /// The page of the tree.
    tree_page: String,
    moved: Vec<String>,
    rule: RuleForm,
    rule_problems: Problems,
}

/// The fields of the placement-rule form, as the service names them.
const RULE_FIELDS: [&str; 4] = ["org_node", "site", "host_name", "account"];

fn rule_form(signed: &Signed, names: &[&str], v: &RuleForm, problems: &Problems) -> Markup {
    let text = |id: &str, value: &str, hint: &str| {
        html! { input id={"rule-" (id)} name=(id) type="text" maxlength="255" value=(value) placeholder=(hint); }
    };
    let node = html! {
        select #rule-org_node name="org_node" {
            option value="" { "— choose a node —" }
            @for n in names { option value=(n) selected[v.org_node == *n] { (n) } }
        }
    };
    html! {
        form.filters #org-rule-form method="post" action="/org/rules" novalidate {
            @for e in problems.general(&RULE_FIELDS) { p.error role="alert" { (e) } }
            (csrf_input(&signed.csrf()))
            (field_for("Node", "org_node", node, problems))
            (field_for("Site", "site", text("site", &v.site, "e.g. S01"), problems))
            (field_for("Host name", "host_name", text("host_name", &v.host_name, "e.g. lon-*"), problems))
            (field_for("Account", "account", text("account", &v.account, "e.g. *.sales"), problems))
            button type="submit" { "Add a rule" }
        }
    }
}

/// A labelled field of the rule form (ids prefixed, as the move form has a node field too).
fn field_for(label: &str, name: &str, control: Markup, problems: &Problems) -> Markup {
    let errors = problems.of(name);
    html! {
        span.field.invalid[!errors.is_empty()] {
            label for={"rule-" (name)} { (label) } " " (control)
            @for e in &errors { span.error id={"rule-" (name) "-error"} role="alert" { " " (e) } }
        }
    }
}

async fn render(state: &WebState, signed: &Signed, shown: &Shown) -> Result<Markup, WebError> {
    let store = state.service.store();
    let nodes = tally_service::org::nodes(store).await?;
    let names: HashMap<i64, String> = nodes
        .iter()
        .map(|n| (n.node.id, n.node.name.clone()))
        .collect();
    let mut sorted: Vec<&str> = nodes.iter().map(|n| n.node.name.as_str()).collect();
    sorted.sort_by_key(|n| n.to_lowercase());
    let all = store.org_rules().await?;
    let href = |n: usize| {
        let at = n.to_string();
        format!(
            "/org{}#placement-rules",
            query(&[("page", &at), ("tree_page", &shown.tree_page)])
        )
    };
    let (rules, first, pages) = paged(&all, &shown.page, href);
    let mut flat = Vec::with_capacity(nodes.len());
    flatten(&children(&nodes), None, 0, &mut flat);
    let tree_at = page_number(&shown.tree_page);
    let tree_start = (tree_at - 1).saturating_mul(PER_PAGE).min(flat.len());
    let tree_href = |n: usize| {
        let at = n.to_string();
        format!(
            "/org{}#org-tree",
            query(&[("page", &shown.page), ("tree_page", &at)])
        )
    };
    let text = |t: &Option<String>| t.clone().unwrap_or_else(|| "—".into());
    let admin = signed.is_admin();
    Ok(html! {
        @for p in &shown.moved { p.error role="alert" { (p) } }
        @if admin && !nodes.is_empty() { (move_form(signed, &nodes)) }
        p.hint { "A computer or a user is placed on a node from its own page (Devices, Users)." }
        section #org-tree { @if nodes.is_empty() { p { "No org nodes yet: import org_nodes.csv." } } (tree_page(&flat, tree_start, PER_PAGE)) }
        @if flat.len() > PER_PAGE { (pager(tree_at, flat.len(), tree_href)) }
        h2 #placement-rules { "Placement rules" }
        p.hint { "Devices and users not placed by hand or by the import go to the node of the first rule that matches, oldest first. A rule places devices (by site and host name) or users (by account). Patterns take * and ? and ignore case." }
        @if admin && !nodes.is_empty() { (rule_form(signed, &sorted, &shown.rule, &shown.rule_problems)) }
        table #org-rules {
            thead { tr { th { "Order" } th { "Node" } th { "Site" } th { "Host name" } th { "Account" }
                @if admin { th { span.visually-hidden { "Actions" } } } } }
            tbody {
                @for (i, r) in rules.iter().enumerate().map(|(i, r)| (first + i, r)) {
                    @let node = names.get(&r.org_node).cloned().unwrap_or_default();
                    tr id={"org-rule-" (r.id)} { td.num { (i + 1) } td { (node) } td { (text(&r.site)) } td { (text(&r.host_name)) } td { (text(&r.account)) }
                        @if admin { td { (button_form(signed, &format!("/org/rules/{}/remove", r.id), "Remove", Some(&format!("Remove rule {} (to {node})?", i + 1)))) } } }
                }
                @if rules.is_empty() { tr { td colspan="6" { "No placement rules yet." } } }
            }
        }
        (pages)
    })
}

async fn org_page(
    state: &WebState,
    signed: &Signed,
    shown: &Shown,
    status: StatusCode,
) -> Result<Response, WebError> {
    let body = render(state, signed, shown).await?;
    Ok((status, layout::page(signed, "/org", "Org tree", body)).into_response())
}

/// The org page's two pages: the placement rules' and the tree's.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct OrgQuery {
    page: String,
    tree_page: String,
}

pub async fn page(
    State(state): State<WebState>,
    signed: Signed,
    Query(q): Query<OrgQuery>,
) -> Result<Response, WebError> {
    let shown = Shown {
        page: q.page,
        tree_page: q.tree_page,
        ..Shown::default()
    };
    org_page(&state, &signed, &shown, StatusCode::OK).await
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
    let moved = (checked.errors.iter())
        .map(|e| format!("{} cannot move: {}", form.node, e.message))
        .collect();
    let shown = Shown {
        moved,
        ..Shown::default()
    };
    org_page(&state, &signed, &shown, StatusCode::UNPROCESSABLE_ENTITY).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RuleForm {
    csrf: String,
    org_node: String,
    site: String,
    host_name: String,
    account: String,
}

impl RuleForm {
    fn spec(&self) -> Result<OrgRuleSpec, Problems> {
        let mut problems = Problems::of_lengths(&[
            ("org_node", &self.org_node),
            ("site", &self.site),
            ("host_name", &self.host_name),
            ("account", &self.account),
        ]);
        if self.org_node.trim().is_empty() {
            problems.0.push(("org_node".into(), "choose a node".into()));
        }
        let given = |v: &str| Some(v.trim().to_string()).filter(|t| !t.is_empty());
        match problems.is_empty() {
            false => Err(problems),
            true => Ok(OrgRuleSpec {
                org_node: self.org_node.trim().into(),
                site: given(&self.site),
                host_name: given(&self.host_name),
                account: given(&self.account),
            }),
        }
    }
}

/// Adds a placement rule; the service's refusal is shown on the form.
pub async fn add_rule(
    State(state): State<WebState>,
    signed: Signed,
    Form(form): Form<RuleForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let problems = match form.spec() {
        Err(problems) => problems,
        Ok(spec) => {
            match tally_service::org::add_rule(&state.service, signed.name(), &spec).await {
                Ok(rule) => {
                    return Ok(Redirect::to(&format!("/org#org-rule-{}", rule.id)).into_response())
                }
                Err(e) => Problems::of_invalid(e, &RULE_FIELDS)?,
            }
        }
    };
    let shown = Shown {
        rule: form,
        rule_problems: problems,
        ..Shown::default()
    };
    org_page(&state, &signed, &shown, StatusCode::UNPROCESSABLE_ENTITY).await
}

pub async fn remove_rule(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let id: i64 = id
        .parse()
        .map_err(|_| WebError::NotFound("no such placement rule; see the org tree".into()))?;
    tally_service::org::delete_rule(&state.service, signed.name(), id).await?;
    Ok(Redirect::to("/org#placement-rules").into_response())
}
