//! The audit log: every change an operator makes, append-only.

use async_trait::async_trait;
use tally_core::AuditEntry;

use crate::{Page, Result};

/// The audit entry of a change that creates or rewrites a row, built from the row as stored
/// (a new row's id is known only then). Mutations that take one write the entry in the
/// change's own transaction, so both are stored or neither is; `None` is for changes no
/// operator made (seeding, the first admin token).
pub type AuditOf<'a, T> = Option<&'a (dyn Fn(&T) -> AuditEntry + Send + Sync)>;

/// The audit entry of a change known before it is made (a revoke, a delete, a placement),
/// written in the change's transaction and only when the change found its row.
pub type AuditNote<'a> = Option<&'a AuditEntry>;

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;
    async fn audit_log(&self, page: Page) -> Result<Vec<(i64, AuditEntry)>>;
}
