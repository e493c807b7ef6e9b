//! The audit entries the service's mutations hand to the store, which writes each in the
//! change's own transaction: a change is never stored without its entry, nor an entry without
//! its change.

use chrono::Utc;
use serde::Serialize;
use tally_core::{AuditEntry, MeteringRule};
use tally_store::{ErrorKind, StoreError};

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

/// A change's "not there", in one place: the store says so by an empty answer (`None`,
/// `false`: no row with that id), or by [`tally_store::StoreError::NotFound`] when the row went
/// between the store's read and its write (another operator, another replica). Either way the
/// caller gets one NotFound in the words `missing` gives, never the store's generic wording.
pub(crate) trait OrMissing<T> {
    fn or_missing(self, missing: impl FnOnce() -> String) -> Result<T>;
}

fn store_missing(e: StoreError, missing: impl FnOnce() -> String) -> ServiceError {
    match e.kind() {
        ErrorKind::NotFound => ServiceError::NotFound(missing()),
        _ => e.into(),
    }
}

impl<T> OrMissing<T> for std::result::Result<Option<T>, StoreError> {
    fn or_missing(self, missing: impl FnOnce() -> String) -> Result<T> {
        match self {
            Ok(Some(row)) => Ok(row),
            Ok(None) => Err(ServiceError::NotFound(missing())),
            Err(e) => Err(store_missing(e, missing)),
        }
    }
}

impl OrMissing<()> for std::result::Result<bool, StoreError> {
    fn or_missing(self, missing: impl FnOnce() -> String) -> Result<()> {
        self.map(|done| done.then_some(())).or_missing(missing)
    }
}
