//! The audit entries the service's mutations hand to the store, which writes each in the
//! change's own transaction: a change is never stored without its entry, nor an entry without
//! its change.

use chrono::Utc;
use serde::Serialize;
use tally_core::AuditEntry;

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
