//! Licensing data: the org tree and its placement rules, applications and their recognition
//! rules, licenses, usage sessions, and the facts compliance reads from them.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tally_core::import::LicenseRow;
use tally_core::licenses::License;
use tally_core::org::OrgRule;
use tally_core::sessions::{RunSession, UsageSession};
use tally_core::{Device, OrgNode, User};

use crate::{AuditNote, AuditOf, Result};

// The licensing types under the paths they had when the store defined them.
pub use crate::import::Progress;
pub use tally_core::history::{Snapshot, StatusChange};
pub use tally_core::import::ImportOutcome;
pub use tally_core::licenses::{AppRecord, Recognition};
pub use tally_core::org::OrgTarget;

/// Whether an installation is there at the instant bound as `$1`: installed before it (or
/// since before Tally knew) and not removed by then.
pub(crate) const INSTALLED_ON: &str = "(installed_at IS NULL OR installed_at < $1) \
     AND (removed_at IS NULL OR removed_at >= $1)";

/// The end of `day` (midnight after it): what existed then is what a position on `day` reads.
pub(crate) fn end_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).expect("midnight").and_utc() + chrono::Duration::days(1)
}

/// The data generations of [`Licensing::generations`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Generations {
    /// Moves with every change people make to what a license position reads: licenses,
    /// applications, recognition, the org tree, statuses, overrides, imports.
    pub positions: i64,
    /// Moves with what agents observe that a position reads: installations, hardware, the
    /// inventory's account classification, usage sessions.
    pub observed: i64,
    /// Moves with every change to what the reclaim list reads besides: monthly usage
    /// summaries, metering rules, agents' devices and revocations.
    pub evidence: i64,
}

#[async_trait]
pub trait Licensing: Send + Sync {
    async fn org_nodes(&self) -> Result<Vec<OrgNode>>;
    /// The applications there are now (not removed).
    async fn applications(&self) -> Result<Vec<AppRecord>>;
    /// The applications there were at the end of `day`: those there now and those removed
    /// since, for a position on that day.
    async fn applications_on(&self, day: NaiveDate) -> Result<Vec<AppRecord>>;
    /// The licenses there are now (not removed).
    async fn licenses(&self) -> Result<Vec<License>>;
    /// The licenses there were at the end of `day`: those there now and those removed since.
    async fn licenses_on(&self, day: NaiveDate) -> Result<Vec<License>>;
    /// The name of what each license there is now is assigned to (org node, host name or
    /// account, by its assignment type), by license id; licenses on the whole organisation
    /// are left out.
    async fn license_assignees(&self) -> Result<std::collections::HashMap<i64, String>>;
    /// Replaces the terms of the license `id` (not removed) with `row`'s; its application
    /// stays. The caller has checked the row (`tally_core::import::validate`). False when
    /// there is no such license.
    async fn update_license(&self, id: i64, row: &LicenseRow, audit: AuditNote<'_>)
        -> Result<bool>;
    /// Every device, for compliance.
    async fn compliance_devices(&self) -> Result<Vec<Device>>;
    /// Every user, for compliance.
    async fn compliance_users(&self) -> Result<Vec<User>>;
    /// Each distinct title (name, publisher, version) installed at the instant `on`.
    async fn software_titles(&self, on: DateTime<Utc>) -> Result<Vec<(String, String, String)>>;
    /// Devices with this title installed at the instant `on`.
    async fn devices_with(&self, title: (&str, &str, &str), on: DateTime<Utc>) -> Result<Vec<i64>>;
    /// Statuses before the changes made at or after `since`, earliest change first:
    /// (subject, id, old status). The first per subject is its status just before `since`.
    async fn status_changes(&self, since: DateTime<Utc>) -> Result<Vec<StatusChange>>;
    /// One application's sessions overlapping `[from, to)`.
    async fn sessions(
        &self,
        application_id: i64,
        period: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Vec<UsageSession>>;
    async fn custom_values(&self) -> Result<Vec<(i64, Option<i64>, i64)>>;
    /// Numbers that change whenever anything a license position (and the reclaim list)
    /// reads changes (triggers bump them inside the changing transaction; migration 16): what
    /// was computed after reading them stays true until they move.
    async fn generations(&self) -> Result<Generations>;
    /// The end of the last session per application and device.
    async fn last_sessions(&self) -> Result<Vec<(i64, i64, DateTime<Utc>)>>;
    /// Replaces the day's snapshots.
    async fn put_snapshots(&self, day: NaiveDate, rows: &[Snapshot]) -> Result<()>;
    async fn snapshots(
        &self,
        application_id: Option<i64>,
        from: NaiveDate,
    ) -> Result<Vec<Snapshot>>;
    /// Marks an application removed at `at`: current lists leave it out, positions on earlier
    /// days keep it, and its recognition rules, sessions and snapshots stay. False when there
    /// is no such application not removed already.
    async fn delete_application(
        &self,
        id: i64,
        at: DateTime<Utc>,
        audit: AuditNote<'_>,
    ) -> Result<bool>;
    /// Marks a license removed at `at`, as [`Licensing::delete_application`] does.
    async fn delete_license(
        &self,
        id: i64,
        at: DateTime<Utc>,
        audit: AuditNote<'_>,
    ) -> Result<bool>;
    /// Adds sessions derived from the agent's runs; a run already stored for the application
    /// grows to cover both. Returns the sessions written.
    async fn put_run_sessions(&self, sessions: &[RunSession]) -> Result<u64>;
    /// Org-node rules, oldest first (the order they are tried in).
    async fn org_rules(&self) -> Result<Vec<OrgRule>>;
    /// Adds a rule; `rule.id` is ignored.
    async fn add_org_rule(&self, rule: &OrgRule, audit: AuditOf<'_, OrgRule>) -> Result<OrgRule>;
    async fn delete_org_rule(&self, id: i64, audit: AuditNote<'_>) -> Result<bool>;
    /// Places a device or a user on a node (or none) by hand; false when there is no such one.
    async fn set_org_node(
        &self,
        target: OrgTarget,
        node: Option<i64>,
        audit: AuditNote<'_>,
    ) -> Result<bool>;
}
