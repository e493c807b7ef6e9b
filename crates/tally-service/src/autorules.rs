//! Running automatic rule generation: on demand from the API, and daily as the
//! `generate_auto_rules` maintenance task.

use chrono::Utc;
use tally_core::autorules::{propose, AutoRuleSettings};
use tally_core::{AuditEntry, MeteringRule, RuleOrigin};

use crate::{Result, Service, ServiceError};

/// Creates the rules inventory justifies now, recording each in the audit log as `actor`;
/// returns them.
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
    for spec in propose(&seen, devices, &existing, settings) {
        let rule = store
            .create_rule(service.site(), RuleOrigin::Automatic, &spec, Utc::now())
            .await?;
        store
            .append_audit(&AuditEntry {
                at: Utc::now(),
                actor: actor.to_string(),
                action: "rule.auto_create".into(),
                target: format!("rule:{}", rule.id),
                detail: serde_json::to_string(&rule.spec).expect("rule serialises"),
            })
            .await?;
        created.push(rule);
    }
    Ok(created)
}
