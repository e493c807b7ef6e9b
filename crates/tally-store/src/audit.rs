//! The audit log: every change an operator makes, append-only.

use async_trait::async_trait;
use tally_core::AuditEntry;

use crate::{Page, Result};

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;
    async fn audit_log(&self, page: Page) -> Result<Vec<(i64, AuditEntry)>>;
}
