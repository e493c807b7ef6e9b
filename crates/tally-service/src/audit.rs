//! The audit entries the service's mutations hand to the store, which writes each in the
//! change's own transaction: a change is never stored without its entry, nor an entry without
//! its change.

use chrono::Utc;
use serde::Serialize;
use tally_core::{AuditEntry, MeteringRule};

use crate::{Result, ServiceError};

/// The entry for `actor` doing `action` to `target`, with `detail` as JSON.
pub(crate) fn entry(
    actor: &str,
    action: &str,
    target: String,
    detail: impl Serialize,
) -> AuditEntry {
    AuditEntry {
        at: Utc::now(),
        actor: actor.to_string(),
        action: action.into(),
        target,
        detail: serde_json::to_string(&detail).expect("audit detail serialises"),
    }
}

/// The entry of a rule created or changed: `action` on `rule:ID`, with the spec as stored.
pub(crate) fn rule_entry<'a>(
    actor: &'a str,
    action: &'a str,
) -> impl Fn(&MeteringRule) -> AuditEntry + Send + Sync + 'a {
    move |rule| entry(actor, action, format!("rule:{}", rule.id), &rule.spec)
}

/// Done when the change found its row (and so stored its entry); otherwise not found, in the
/// words `missing` gives.
pub(crate) fn found(done: bool, missing: impl FnOnce() -> String) -> Result<()> {
    match done {
        true => Ok(()),
        false => Err(ServiceError::NotFound(missing())),
    }
}
