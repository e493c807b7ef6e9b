//! A parent's pages narrowed to one site and the sites below it (`?site=CODE`), as the API's
//! `site=` narrows them (`tally_service::scope`): the choice of site in a page's filter form,
//! the line saying that a page is narrowed with a link back to the whole subtree, and the
//! sites and devices a page then reads. An unknown code is the service's 404, a malformed one
//! its 400.

use std::collections::HashSet;

use maud::{html, Markup};
use tally_core::SiteCode;
use tally_service::scope;

use crate::{WebError, WebState};

/// The site a page is narrowed to, if any, and the sites it could be narrowed to.
pub struct SiteScope {
    /// The chosen site and the sites below it, the chosen one first; `None`: the whole
    /// subtree this site holds.
    pub sites: Option<Vec<SiteCode>>,
    /// This site and every site below it, in tree order: the choice, offered when there is
    /// more than this site.
    choices: Vec<SiteCode>,
}

impl SiteScope {
    /// The scope of `site` as the query gave it (any case; empty for none).
    pub async fn read(state: &WebState, site: &str) -> Result<Self, WebError> {
        crate::forms::bounded("site", site)
            .map_err(|(f, why)| WebError::BadRequest(format!("{f}: {why}")))?;
        let code = Some(site.trim()).filter(|c| !c.is_empty());
        let sites = scope::subtree_of(&state.service, code).await?;
        let known = state.service.store().sites().await?;
        let choices = tally_core::hierarchy::subtree(state.service.site(), &known);
        Ok(Self { sites, choices })
    }

    /// The chosen site's code, or `""` for none: the value a link carries as `site`.
    pub fn code(&self) -> String {
        self.sites
            .as_ref()
            .and_then(|s| s.first())
            .map_or_else(String::new, ToString::to_string)
    }

    /// The devices of the chosen sites, when a site is chosen.
    pub async fn devices(&self, state: &WebState) -> Result<Option<HashSet<i64>>, WebError> {
        Ok(match &self.sites {
            Some(sites) => Some(scope::devices_of(state.service.store(), sites).await?),
            None => None,
        })
    }

    /// The site's label and list for a GET filter form; nothing on a site with no site below
    /// it and none chosen.
    pub fn control(&self) -> Markup {
        let chosen = self.code();
        if self.choices.len() < 2 && chosen.is_empty() {
            return html! {};
        }
        html! {
            label for="site" { "Site" }
            select #site name="site" {
                option value="" { "this site and every site below" }
                @for c in &self.choices {
                    option value=(c) selected[c.as_str() == chosen] { (c) }
                }
            }
        }
    }

    /// When a site is chosen, the line saying so and `note` (what still counts whole), with a
    /// link to `all` (the same page over the whole subtree).
    pub fn banner(&self, all: &str, note: &str) -> Markup {
        let code = self.code();
        html! {
            @if !code.is_empty() {
                p.site-scope #site-scope {
                    "Narrowed to site " strong { (code) } " and the sites below it: only their devices count. "
                    @if !note.is_empty() { (note) " " }
                    a #site-scope-all href=(all) { "Show all sites" }
                }
            }
        }
    }
}
