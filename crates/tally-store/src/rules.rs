//! Metering rules: which executables agents meter.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::rules::{MeteringRule, RuleOrigin, RuleSpec};
use tally_core::SiteCode;

use crate::{AuditNote, AuditOf, Result};

#[async_trait]
pub trait RuleStore: Send + Sync {
    async fn create_rule(
        &self,
        site: &SiteCode,
        origin: RuleOrigin,
        spec: &RuleSpec,
        at: DateTime<Utc>,
        audit: AuditOf<'_, MeteringRule>,
    ) -> Result<MeteringRule>;
    async fn update_rule(
        &self,
        id: i64,
        spec: &RuleSpec,
        at: DateTime<Utc>,
        audit: AuditOf<'_, MeteringRule>,
    ) -> Result<Option<MeteringRule>>;
    async fn delete_rule(&self, id: i64, audit: AuditNote<'_>) -> Result<bool>;
    async fn rule(&self, id: i64) -> Result<Option<MeteringRule>>;
    async fn rules(&self) -> Result<Vec<MeteringRule>>;
}
