//! Placing a computer or a user on an org node by picking the node by name (from the device's
//! and the user's pages), through `tally_service::org::place`, the operation the API's `PUT
//! …/org-node` and `tally org place` use: audited as `device.place` or `user.place` under the
//! operator's name. An empty choice takes it off its node, so the placement rules decide.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use tally_api::Placement;
use tally_core::org::OrgTarget;

use crate::forms::{bounded, csrf_input};
use crate::session::Signed;
use crate::{WebError, WebState};

/// The form that places the device or user at `action` on a node picked by name.
pub fn form<'n>(
    signed: &Signed,
    action: &str,
    current: Option<&str>,
    nodes: impl Iterator<Item = &'n String>,
) -> Markup {
    let mut nodes: Vec<&String> = nodes.collect();
    nodes.sort_by_key(|n| n.to_lowercase());
    html! {
        form.inline #place-form method="post" action=(action) {
            (csrf_input(&signed.csrf()))
            label for="org_node" { "Org node" } " "
            select #org_node name="org_node" {
                option value="" selected[current.is_none()] { "— none: the placement rules decide —" }
                @for n in nodes { option value=(n) selected[current == Some(n.as_str())] { (n) } }
            }
            " " button type="submit" { "Place" }
        }
    }
}

#[derive(Deserialize)]
pub struct PlaceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    org_node: String,
}

async fn place(
    state: &WebState,
    signed: &Signed,
    target: OrgTarget,
    form: &PlaceForm,
) -> Result<(), WebError> {
    signed.may_change(&form.csrf)?;
    bounded("org_node", &form.org_node)
        .map_err(|(f, why)| WebError::BadRequest(format!("{f}: {why}")))?;
    let org_node = Some(form.org_node.trim().to_string()).filter(|n| !n.is_empty());
    let placement = Placement { org_node };
    tally_service::org::place(&state.service, signed.name(), target, &placement).await?;
    Ok(())
}

fn id_of(text: &str, what: &str) -> Result<i64, WebError> {
    text.parse()
        .map_err(|_| WebError::NotFound(format!("no such {what}; see the {what} list")))
}

pub async fn device(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<PlaceForm>,
) -> Result<Response, WebError> {
    let id = id_of(&id, "device")?;
    place(&state, &signed, OrgTarget::Device(id), &form).await?;
    Ok(Redirect::to(&format!("/devices/{id}")).into_response())
}

pub async fn user(
    State(state): State<WebState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<PlaceForm>,
) -> Result<Response, WebError> {
    let id = id_of(&id, "user")?;
    place(&state, &signed, OrgTarget::User(id), &form).await?;
    Ok(Redirect::to(&format!("/users/{id}")).into_response())
}
