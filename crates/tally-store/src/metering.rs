//! What the system-metering report reads and writes: the site's alias, each device status's
//! relevance, the estate counted without names, the certificates' fingerprints on the
//! server's own device, and the compare values the metering keeps.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::system_metering::{DeviceFact, StatusRelevance, UserFact};

use crate::{AuditNote, Result};

#[async_trait]
pub trait MeteringStore: Send + Sync {
    /// Sets (or, with `None`, removes) the alias of site `code`, with its audit entry; false
    /// when there is no such site.
    async fn set_site_alias(
        &self,
        code: &tally_core::SiteCode,
        alias: Option<&str>,
        audit: AuditNote<'_>,
    ) -> Result<bool>;

    /// The four criteria of every device status.
    async fn status_relevance(&self) -> Result<Vec<StatusRelevance>>;

    /// Sets one status's criteria, with its audit entry.
    async fn set_status_relevance(&self, r: &StatusRelevance, audit: AuditNote<'_>) -> Result<()>;

    /// Every device's status and management type, and nothing that names it.
    async fn device_facts(&self) -> Result<Vec<DeviceFact>>;

    /// Every user's status and service-user indications, and nothing that names them.
    async fn user_facts(&self) -> Result<Vec<UserFact>>;

    /// Records each `(software, publisher)` fingerprint as installed on device `device_id` from
    /// `at` (source `certificate`, which inventory leaves alone); those no longer given are
    /// marked removed. Returns how many are current.
    async fn put_fingerprints(
        &self,
        device_id: i64,
        fingerprints: &[(String, String)],
        at: DateTime<Utc>,
    ) -> Result<u64>;

    /// Sets each application's organisation-wide custom compare value, with the audit entry.
    async fn set_compare_values(&self, values: &[(i64, i64)], audit: AuditNote<'_>) -> Result<()>;
}
