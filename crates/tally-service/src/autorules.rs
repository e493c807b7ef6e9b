//! Running automatic rule generation: on demand from the API, and daily as the
//! `generate_auto_rules` maintenance task.

use chrono::Utc;
use tally_core::autorules::{propose, AutoRuleSettings};
use tally_core::{MeteringRule, RuleOrigin};

use crate::audit::rule_entry;
use crate::{Result, Service, ServiceError};

/// Creates the rules inventory justifies now, each with its audit entry (as `actor`) in its
/// own transaction; returns them.
pub async fn generate(
    service: &Service,
    settings: AutoRuleSettings,
    actor: &str,
) -> Result<Vec<MeteringRule>> {
    if !(0.0..=100.0).contains(&settings.min_percent_of_devices) {
        return Err(ServiceError::Invalid(
            "min_percent_of_devices: must be between 0 and 100".into(),
        ));
    }
    let store = service.store();
    let seen = store.executables_seen().await?;
    let devices = store.inventoried_devices().await?;
    let existing = store.rules().await?;
    let mut created = Vec::new();
    let audit = rule_entry(actor, "rule.auto_create");
    for spec in propose(&seen, devices, &existing, settings) {
        let (origin, at) = (RuleOrigin::Automatic, Utc::now());
        let rule = store
            .create_rule(service.site(), origin, &spec, at, Some(&audit))
            .await?;
        created.push(rule);
    }
    Ok(created)
}
