//! The one-transaction import that loads a validated batch of org nodes, devices, users,
//! applications, installations, sessions, licenses and custom values.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::import::{Batch, ImportOutcome, Known};
use tally_core::SiteCode;

use crate::Result;

/// Called with the rows written so far, for a progress bar.
pub type Progress<'a> = &'a (dyn Fn(u64) + Send + Sync);

/// Stored ids by name (org node, host name, account, application).
pub(crate) type Ids = std::collections::HashMap<String, i64>;

/// Rows per multi-row insert while importing.
pub(crate) const CHUNK: usize = 1000;

#[async_trait]
pub trait Importing: Send + Sync {
    /// Names rows of an import may refer to.
    async fn import_known(&self) -> Result<Known>;
    /// Loads a validated batch in one transaction: all of it or, on any error, nothing.
    /// Devices are matched by host name, users by account, org nodes and applications by
    /// name (and updated); installations by device and software name; sessions and licenses
    /// are added. `audit`, when given, is written in the same transaction.
    async fn import(
        &self,
        batch: &Batch,
        site: &SiteCode,
        at: DateTime<Utc>,
        progress: Progress<'_>,
        audit: crate::AuditOf<'_, ImportOutcome>,
    ) -> Result<ImportOutcome>;
}

/// The id a name resolved to; a name the import's checks should have caught is a conflict,
/// which rolls the import back.
pub(crate) fn resolve(ids: &Ids, name: &str, what: &str) -> Result<i64> {
    ids.get(name).copied().ok_or_else(|| {
        crate::StoreError::Conflict(format!(
            "the import refers to {what} {name:?}, which is neither in it nor stored; nothing was loaded"
        ))
    })
}

pub(crate) fn user_metric_name(m: Option<tally_core::compliance::TotalUserMetric>) -> &'static str {
    use tally_core::compliance::TotalUserMetric;
    match m.unwrap_or_default() {
        TotalUserMetric::MeteredUsers => "metered_users",
        TotalUserMetric::InstallationUsers => "installation_users",
        TotalUserMetric::Both => "both",
    }
}
