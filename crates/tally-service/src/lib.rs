//! Tally's service layer: the operations the server, the CLI, the reports, the coming web
//! console and the coming site sync share, over a [`tally_store::Store`]. Compliance positions
//! and the reclaim list, the maintenance tasks and their scheduler, automatic rules, usage
//! ingest and the report datasets live here once, so no caller goes through HTTP handlers or
//! copies them. Errors are [`ServiceError`]s, never HTTP statuses.

pub mod agents;
pub mod app_usage;
mod audit;
pub mod autorules;
pub mod certificates;
pub mod compliance;
mod compliance_text;
pub mod concurrency;
pub mod dashboard;
pub mod devices;
mod error;
pub mod export_files;
pub mod file_rules;
pub mod group_commit;
pub mod hierarchy;
pub mod import_files;
pub mod ingest;
pub mod licensing;
pub mod maintenance;
pub mod metering;
mod metering_report;
pub mod operators;
pub mod org;
pub mod positions;
pub mod privacy;
pub mod reclaim;
pub mod reclaim_campaign;
mod report_elp;
pub mod reports;
pub mod rules;
mod scheduled;
pub mod scope;
pub mod site;
pub mod site_sync;
mod summaries;
pub mod summary_views;
pub mod telemetry;
pub mod trends;
pub mod usage_reads;
pub mod users;
pub mod web_sessions;
pub mod written_reports;

#[cfg(test)]
mod test_store;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tally_core::wire::v1::{Inventory, UsageRecordV1};
use tally_core::SiteCode;
use tally_store::{BatchOutcome, Store};

pub use compliance::AppPosition;
pub use error::{Result, ServiceError};
pub use file_rules::FileRules;
pub use reclaim::{NoUsageData, ReclaimList, ReclaimQuery, ReclaimReport, Reclaimable};
pub use scheduled::ReportOutput;

/// Concurrent usage-batch writes per server when each upload is its own transaction.
pub const WRITE_SLOTS: usize = 4;

/// One site's operations with the state they keep between calls: the store, the site it
/// serves, ingest's id caches and write slots, the file → rule mapping, and where scheduled
/// reports go. One per server process; share it behind an `Arc`.
pub struct Service {
    store: Arc<dyn Store>,
    site: SiteCode,
    ingest: ingest::DimensionCache,
    /// Usage writes in progress at once. More than a few only queue inside the database (SQLite
    /// has one writer; its busy handler sleeps between retries), so uploads wait here instead,
    /// having already parsed and validated their bodies.
    write_slots: tokio::sync::Semaphore,
    /// How uploads are written; the group-commit writers start with the first upload.
    ingest_mode: group_commit::IngestMode,
    group_commit: std::sync::OnceLock<group_commit::GroupCommit>,
    file_rules: Arc<FileRules>,
    reports: ReportOutput,
    /// Set when the site pseudonymises account and full names as they enter.
    pseudonyms: Option<privacy::Pseudonyms>,
    /// License positions computed, kept until the data they were read from changes.
    positions: positions::Positions,
    /// The site key, the alias from the configuration, where the system-metering report goes
    /// and where it is sent.
    metering: metering::MeteringSetup,
    /// What this process counted, for `/metrics`.
    telemetry: Arc<telemetry::Telemetry>,
}

impl Service {
    pub fn new(store: Arc<dyn Store>, site: SiteCode) -> Self {
        let file_rules = Arc::new(FileRules::default());
        Self {
            store,
            site,
            ingest: ingest::DimensionCache::new(file_rules.clone()),
            write_slots: tokio::sync::Semaphore::new(WRITE_SLOTS),
            ingest_mode: group_commit::IngestMode::Grouped {
                writers: 1,
                queue_records: group_commit::QUEUE_RECORDS,
            },
            group_commit: std::sync::OnceLock::new(),
            file_rules,
            reports: ReportOutput::default(),
            pseudonyms: None,
            positions: positions::Positions::default(),
            metering: metering::MeteringSetup::default(),
            telemetry: Arc::default(),
        }
    }

    /// What this process counted: ingest, latency, answers, task runs.
    pub fn telemetry(&self) -> &telemetry::Telemetry {
        &self.telemetry
    }

    /// The same service, writing uploads as `mode` says (grouped on one writer by default).
    pub fn with_ingest_mode(mut self, mode: group_commit::IngestMode) -> Self {
        self.ingest_mode = mode;
        self
    }

    /// Usage records queued for the group-commit writers and not yet being written.
    pub fn ingest_waiting(&self) -> usize {
        self.group_commit.get().map_or(0, |g| g.waiting())
    }

    /// The same service, with the site key and the system-metering settings.
    pub fn with_metering(mut self, metering: metering::MeteringSetup) -> Self {
        self.metering = metering;
        self
    }

    pub fn metering(&self) -> &metering::MeteringSetup {
        &self.metering
    }

    /// The same service, storing account and full names as pseudonyms under `pseudonyms`.
    pub fn with_pseudonyms(mut self, pseudonyms: privacy::Pseudonyms) -> Self {
        self.pseudonyms = Some(pseudonyms);
        self
    }

    /// The site's pseudonym key, when it pseudonymises.
    pub fn pseudonyms(&self) -> Option<&privacy::Pseudonyms> {
        self.pseudonyms.as_ref()
    }

    /// The same service, keeping license positions for new inventory and usage until they are
    /// `refresh` old (changes people make are followed at once; zero follows everything).
    pub fn with_position_refresh(mut self, refresh: std::time::Duration) -> Self {
        self.positions = positions::Positions::refreshed_every(refresh);
        self
    }

    /// The same service, writing scheduled reports as `reports` says.
    pub fn with_reports(mut self, reports: ReportOutput) -> Self {
        self.reports = reports;
        self
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The store, shared.
    pub fn store_arc(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    pub fn site(&self) -> &SiteCode {
        &self.site
    }

    /// The file → rule mapping the summarisation tasks read.
    pub fn file_rules(&self) -> &FileRules {
        &self.file_rules
    }

    /// Stores one validated usage batch of a device: files and users resolved through the
    /// caches, then written with other uploads waiting at the same time (group commit), or
    /// alone once a write slot is free.
    pub async fn store_usage(
        &self,
        device_id: i64,
        batch_id: &str,
        records: &[UsageRecordV1],
        now: DateTime<Utc>,
    ) -> Result<BatchOutcome> {
        let rows = self
            .ingest
            .resolve(self.store(), device_id, records, self.pseudonyms())
            .await?;
        let batch = tally_store::UsageBatchRows {
            device_id,
            batch_id: batch_id.to_string(),
            records: rows,
            at: now,
        };
        if let Some(writers) = self.group_writers() {
            return writers.store(batch).await;
        }
        let _slot = self
            .write_slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let mut outcomes = self.store.insert_usage_batches(&[batch]).await?;
        Ok(outcomes.pop().expect("one outcome per batch"))
    }

    /// Records an agent's heartbeat, with other requests waiting when grouped.
    pub async fn store_heartbeat(&self, beat: tally_store::Heartbeat) -> Result<()> {
        match self.group_writers() {
            Some(writers) => writers.heartbeat(beat).await,
            None => Ok(self.store.agent_heartbeats(&[beat]).await?),
        }
    }

    /// The group-commit writers, started on first use; `None` when each write is its own.
    fn group_writers(&self) -> Option<&group_commit::GroupCommit> {
        match self.ingest_mode {
            group_commit::IngestMode::Grouped {
                writers,
                queue_records,
            } => Some(self.group_commit.get_or_init(|| {
                group_commit::GroupCommit::start(self.store.clone(), writers, queue_records)
            })),
            group_commit::IngestMode::OneByOne => None,
        }
    }

    /// Stores a device's validated inventory, its account names pseudonymised when the site
    /// says so; whether anything changed.
    pub async fn store_inventory(
        &self,
        device_id: i64,
        mut inventory: Inventory,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        if let Some(p) = self.pseudonyms() {
            for account in &mut inventory.accounts {
                account.name = p.account(&account.name);
                account.full_name = account.full_name.as_deref().map(|n| p.full_name(n));
            }
        }
        Ok(self.store.put_inventory(device_id, &inventory, now).await?)
    }
}
