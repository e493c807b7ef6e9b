//! Metering rules changed by an operator, each stored with its audit entry in one transaction.

use chrono::Utc;
use tally_core::rules::RuleSpec;
use tally_core::{MeteringRule, RuleOrigin, SiteCode};

use crate::audit::{entry, rule_entry, OrMissing};
use crate::{Result, Service, ServiceError};

fn no_rule(id: i64) -> String {
    format!("no rule {id}; see tally rules list")
}

/// Refuses `name` when another rule of `site` (not `except`) has it, in any case: `tally rules
/// disable NAME` and the reports find a rule by its name, so a name must say which rule. The
/// unique index of migration 14 backs this up against two requests at once.
pub async fn name_free(
    service: &Service,
    site: &SiteCode,
    name: &str,
    except: Option<i64>,
) -> Result<()> {
    let rules = service.store().rules().await?;
    let taken = rules
        .iter()
        .find(|r| r.site_code == *site && Some(r.id) != except && same_name(&r.spec.name, name));
    match taken {
        None => Ok(()),
        Some(r) => Err(ServiceError::Conflict(format!(
            "rule {} ({:?}, metering {:?}) already has the name {name:?}: rule names are unique \
             per site (any case); choose another name, or change that rule with tally rules edit {}",
            r.id, r.spec.name, r.spec.file_name, r.id
        ))),
    }
}

/// Rule names compare in any case.
pub fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Refuses a change to a rule another site owns: rules copied down the hierarchy (or up, for
/// the parent's summaries) are read-only here and change only at their owning site, whose
/// next sync brings the change.
fn owned_here(service: &Service, rule: &MeteringRule) -> Result<()> {
    if &rule.site_code == service.site() {
        return Ok(());
    }
    Err(ServiceError::Conflict(format!(
        "rule {} ({:?}) belongs to site {}: it is read-only here; change it on site {}",
        rule.id, rule.spec.name, rule.site_code, rule.site_code
    )))
}

/// Creates a rule for this site, as `actor`.
pub async fn create(service: &Service, actor: &str, spec: &RuleSpec) -> Result<MeteringRule> {
    spec.validate()?;
    name_free(service, service.site(), &spec.name, None).await?;
    let audit = rule_entry(actor, "rule.create");
    let (site, at) = (service.site(), Utc::now());
    Ok(service
        .store()
        .create_rule(site, RuleOrigin::Manual, spec, at, Some(&audit))
        .await?)
}

/// Replaces rule `id`'s spec, as `actor`.
pub async fn update(
    service: &Service,
    actor: &str,
    id: i64,
    spec: &RuleSpec,
) -> Result<MeteringRule> {
    spec.validate()?;
    let store = service.store();
    // The rule's site, whose other rules its new name must not clash with.
    let old = store.rule(id).await.or_missing(|| no_rule(id))?;
    owned_here(service, &old)?;
    name_free(service, &old.site_code, &spec.name, Some(id)).await?;
    let audit = rule_entry(actor, "rule.update");
    (store.update_rule(id, spec, Utc::now(), Some(&audit)).await).or_missing(|| no_rule(id))
}

/// Deletes rule `id`, as `actor`.
pub async fn delete(service: &Service, actor: &str, id: i64) -> Result<()> {
    let old = service.store().rule(id).await.or_missing(|| no_rule(id))?;
    owned_here(service, &old)?;
    let audit = entry(actor, "rule.delete", format!("rule:{id}"), ());
    (service.store().delete_rule(id, Some(&audit)).await).or_missing(|| no_rule(id))
}

/// The first rule (by id) called `name`, in any ASCII case: how the summary reads name a
/// rule.
pub async fn named(service: &Service, name: &str) -> Result<MeteringRule> {
    let rules = service.store().rules().await?;
    rules
        .into_iter()
        .find(|r| r.spec.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            ServiceError::NotFound(format!("no rule named {name:?}; see tally rules list"))
        })
}
