//! Running automatic rule generation: on demand from the API, and daily as the
//! `generate_auto_rules` maintenance task.

use chrono::Utc;
use tally_core::autorules::{propose, AutoRuleSettings};
use tally_core::{AuditEntry, MeteringRule, RuleOrigin};

use crate::{ApiError, AppState};

/// Creates the rules inventory justifies now; returns them.
pub async fn generate(
    state: &AppState,
    settings: AutoRuleSettings,
    actor: &str,
) -> Result<Vec<MeteringRule>, ApiError> {
    let seen = state.store.executables_seen().await?;
    let devices = state.store.inventoried_devices().await?;
    let existing = state.store.rules().await?;
    let mut created = Vec::new();
    for spec in propose(&seen, devices, &existing, settings) {
        let rule = state
            .store
            .create_rule(&state.site, RuleOrigin::Automatic, &spec, Utc::now())
            .await?;
        state
            .store
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
