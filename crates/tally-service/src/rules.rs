//! Metering rules changed by an operator, each stored with its audit entry in one transaction.

use chrono::Utc;
use tally_core::rules::RuleSpec;
use tally_core::{MeteringRule, RuleOrigin};

use crate::audit::{entry, found, rule_entry};
use crate::{Result, Service, ServiceError};

fn no_rule(id: i64) -> String {
    format!("no rule {id}; see tally rules list")
}

/// Creates a rule for this site, as `actor`.
pub async fn create(service: &Service, actor: &str, spec: &RuleSpec) -> Result<MeteringRule> {
    spec.validate()?;
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
    let audit = rule_entry(actor, "rule.update");
    let store = service.store();
    store
        .update_rule(id, spec, Utc::now(), Some(&audit))
        .await?
        .ok_or_else(|| ServiceError::NotFound(no_rule(id)))
}

/// Deletes rule `id`, as `actor`.
pub async fn delete(service: &Service, actor: &str, id: i64) -> Result<()> {
    let audit = entry(actor, "rule.delete", format!("rule:{id}"), ());
    let done = service.store().delete_rule(id, Some(&audit)).await?;
    found(done, || no_rule(id))
}
