//! The reclaim campaign on the reclaim page: the totals per state (what is proposed, confirmed
//! and removed, and the money each ties up or freed), the items with who took each step, and
//! the admin's forms that propose an installation and move it on. The auditor sees the same
//! list without a button, and the server refuses the forms from it.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;
use tally_core::reclaim::{Campaign, ReclaimItem, ReclaimState, ReclaimStep};
use tally_service::reclaim_campaign;

use crate::apps::{page_number, pager, PER_PAGE};
use crate::forms::csrf_input;
use crate::layout::{app_href, monies};
use crate::reclaim::{Filters, ReclaimParams};
use crate::session::Signed;
use crate::{WebError, WebState};

/// What the button moving an item from a state says.
fn step_label(from: ReclaimState) -> Option<&'static str> {
    match from {
        ReclaimState::Proposed => Some("Confirm"),
        ReclaimState::Confirmed => Some("Mark removed"),
        ReclaimState::Removed => None,
    }
}

fn step_text(step: Option<&ReclaimStep>) -> String {
    step.map(|s| format!("{} by {}", s.at.date_naive(), s.by))
        .unwrap_or_default()
}

/// The campaign's section of the reclaim page; its items page with `campaign_page`.
pub fn section(signed: &Signed, f: &Filters, camp: &Campaign, q: &ReclaimParams) -> Markup {
    let page = page_number(&q.campaign_page);
    html! {
        h2 #campaign-heading { "Reclaim campaign" }
        p.hint { "Installations proposed for reclaiming, confirmed with their users, and removed; the cost is what each tied up when it was proposed." }
        table #campaign-totals {
            thead { tr { th { "State" } th.num { "Installations" } th.num { "Cost" } } }
            tbody {
                @for t in &camp.totals {
                    tr #{"total-" (t.state.as_str())} {
                        td { (t.state.as_str()) } td.num { (t.items) } td.num.cost { (monies(&t.cost)) }
                    }
                }
            }
        }
        (items(signed, f, &camp.items, page))
    }
}

/// The campaign's items, a page of them, with the admin's next-step button on each.
fn items(signed: &Signed, f: &Filters, list: &[ReclaimItem], page: usize) -> Markup {
    html! {
        table #campaign {
            thead { tr { th { "Application" } th { "Computer" } th.num { "Units" } th.num { "Cost" } th { "License" } th { "State" } th { "Proposed" } th { "Confirmed" } th { "Removed" } @if signed.is_admin() { th { "Next step" } } } }
            tbody {
                @for i in list.iter().skip((page - 1) * PER_PAGE).take(PER_PAGE) {
                    tr {
                        td { a href=(app_href(&i.item.application, None)) { (i.item.application) } }
                        td { (i.item.host_name) }
                        td.num { (i.item.units) }
                        td.num { (monies(i.item.cost.as_ref())) }
                        td { (i.item.license.as_deref().unwrap_or("")) }
                        td.status { (i.state.as_str()) }
                        td { (step_text(Some(&i.proposed))) }
                        td { (step_text(i.confirmed.as_ref())) }
                        td { (step_text(i.removed.as_ref())) }
                        @if signed.is_admin() { td { (next_step(signed, f, i)) } }
                    }
                }
                @if list.is_empty() { tr { td colspan="10" { "Nothing proposed yet." } } }
            }
        }
        @if list.len() > PER_PAGE { (pager(page, list.len(), |n| format!("{}&campaign_page={n}#campaign-heading", f.href("/reclaim", 1)))) }
    }
}

fn next_step(signed: &Signed, f: &Filters, i: &ReclaimItem) -> Markup {
    html! {
        @if let Some(label) = step_label(i.state) {
            form.inline method="post" action={"/reclaim/items/" (i.id)} {
                (csrf_input(&signed.csrf()))
                (f.hidden())
                input type="hidden" name="from" value=(i.state.as_str());
                button.step type="submit" aria-label={(label) ": " (i.item.application) " on " (i.item.host_name)} { (label) }
            }
        }
    }
}

/// A form proposing an installation: the filters of the view it came from, and which one.
#[derive(Deserialize)]
pub struct ProposeForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    filters: ReclaimParams,
    #[serde(default)]
    item_application: String,
    #[serde(default)]
    device_id: String,
}

/// A device id from a form.
fn id(field: &str, text: &str) -> Result<i64, WebError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id >= 1)
        .ok_or_else(|| WebError::BadRequest(format!("{field}: a positive whole number")))
}

pub async fn propose(
    State(state): State<WebState>,
    signed: Signed,
    Form(form): Form<ProposeForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let f = Filters::parse(&form.filters)?;
    crate::forms::bounded("item_application", &form.item_application)
        .map_err(|(field, why)| WebError::BadRequest(format!("{field}: {why}")))?;
    let device = id("device_id", &form.device_id)?;
    let today = Utc::now().date_naive();
    let installation = (form.item_application.trim(), device);
    reclaim_campaign::propose(&state.service, signed.name(), installation, today, f.days).await?;
    Ok(Redirect::to(&f.href("/reclaim", 1)).into_response())
}

/// A form moving an item on: the state it was seen in, and the view's filters.
#[derive(Deserialize)]
pub struct AdvanceForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    filters: ReclaimParams,
    #[serde(default)]
    from: String,
}

pub async fn advance(
    State(state): State<WebState>,
    signed: Signed,
    Path(item): Path<String>,
    Form(form): Form<AdvanceForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let f = Filters::parse(&form.filters)?;
    let item = id("item", &item)?;
    let from = ReclaimState::parse(&form.from)
        .ok_or_else(|| WebError::BadRequest("from: proposed, confirmed or removed".into()))?;
    reclaim_campaign::advance(&state.service, signed.name(), item, from).await?;
    Ok(Redirect::to(&f.href("/reclaim", 1)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positive_numbers() {
        assert_eq!(id("device_id", " 7 ").unwrap(), 7);
        for bad in ["0", "-3", "x", "", "99999999999999999999"] {
            assert!(id("device_id", bad).is_err(), "{bad}");
        }
    }
}
