//! Running automatic rule generation: on demand from the API and on a schedule.

use std::time::Duration;

use chrono::Utc;
use tally_core::autorules::{propose, AutoRuleSettings};
use tally_core::{AuditEntry, MeteringRule, RuleOrigin};

use crate::{ApiError, AppState};

/// How often the scheduled run happens: Configuration Manager evaluates automatic rules daily.
pub const AUTO_RULES_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);

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

/// Runs [`generate`] with the default settings every `every`, until the process ends.
pub async fn schedule(state: AppState, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match generate(&state, AutoRuleSettings::default(), "scheduler").await {
            Ok(created) if !created.is_empty() => {
                tracing::info!(
                    created = created.len(),
                    "automatic rules created (disabled)"
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "automatic rule generation failed; retrying at the next run")
            }
        }
    }
}
