//! The site as reports name it: its alias (seed 003), from the first of three sources that
//! has one — a `serveralias.txt` file in the metering folder, the alias set with `tally site
//! set --alias` (stored), the `alias` setting of the configuration — else its name; and the
//! site's Ed25519 public key.

use tally_api::SiteView;
use tally_core::limits::MAX_NAME;

use crate::audit::{entry, OrMissing};
use crate::{Result, Service, ServiceError};

/// The alias file's name in the metering folder, as the seed names it.
pub const ALIAS_FILE: &str = "serveralias.txt";

/// The alias and where it came from, when there is one.
pub async fn alias(service: &Service) -> Result<Option<(String, &'static str)>> {
    if let Some(dir) = &service.metering().dir {
        if let Ok(text) = std::fs::read_to_string(dir.join(ALIAS_FILE)) {
            let first = text.lines().next().unwrap_or("").trim();
            if !first.is_empty() {
                let alias: String = first
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_NAME)
                    .collect();
                return Ok(Some((alias, ALIAS_FILE)));
            }
        }
    }
    let stored = service.store().site(service.site()).await?;
    if let Some(a) = stored.and_then(|s| s.alias).filter(|a| !a.is_empty()) {
        return Ok(Some((a, "tally site set")));
    }
    Ok(service
        .metering()
        .config_alias
        .clone()
        .filter(|a| !a.is_empty())
        .map(|a| (a, "configuration")))
}

/// What heads every report: the alias, else the site's name, else its code.
pub async fn label(service: &Service) -> Result<String> {
    if let Some((alias, _)) = alias(service).await? {
        return Ok(alias);
    }
    let stored = service.store().site(service.site()).await?;
    Ok(stored
        .map(|s| s.name)
        .unwrap_or_else(|| service.site().to_string()))
}

/// This site: code, name, alias with its source, public key.
pub async fn view(service: &Service) -> Result<SiteView> {
    let stored = service.store().site(service.site()).await?;
    let alias = alias(service).await?;
    Ok(SiteView {
        code: service.site().to_string(),
        name: stored.map(|s| s.name).unwrap_or_default(),
        alias_source: alias.as_ref().map(|a| a.1.to_string()),
        alias: alias.map(|a| a.0),
        public_key: service.metering().public_key(),
    })
}

/// Sets the stored alias (empty removes it), as `actor`.
pub async fn set_alias(service: &Service, actor: &str, alias: &str) -> Result<SiteView> {
    let alias = alias.trim();
    if alias.chars().count() > MAX_NAME || alias.chars().any(char::is_control) {
        return Err(ServiceError::Invalid(format!(
            "alias: at most {MAX_NAME} characters, no control characters"
        )));
    }
    let alias = (!alias.is_empty()).then_some(alias);
    let code = service.site();
    let audit = entry(actor, "site.alias", format!("site:{code}"), alias);
    (service
        .store()
        .set_site_alias(code, alias, Some(&audit))
        .await)
        .or_missing(|| format!("no site {code}"))?;
    view(service).await
}
