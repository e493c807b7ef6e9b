//! Tally's storage: one trait per aggregate (sites and devices, rules, usage, agents and
//! tokens, inventory, summaries and tasks, licensing, import, export, audit, web console sessions), with [`Store`]
//! their union, implemented on SQLite (embedded, the default) and on PostgreSQL (large sites,
//! several stateless server replicas). `use tally_store::prelude::*` brings every trait in.
//!
//! The two implementations share their query code: each aggregate's queries are written once
//! in `queries/<aggregate>.rs` against the aliases `Db` (the sqlx database) and `DbStore` (the
//! backend's store type), and that file is compiled once per backend as a module of
//! `sqlite/` and of `postgres/` (`#[path]`). The SQL is the common subset both engines accept
//! (`$n` parameters, `ON CONFLICT`, `RETURNING`). What differs — connecting, pragmas,
//! migrations, task locks, the two bulk readers compliance needs — lives in each backend's
//! module. Migrations are kept per backend in `migrations/<backend>/` and are never edited once
//! released.

mod agents;
mod audit;
mod certificates;
mod error;
pub mod export;
mod hierarchy;
pub mod import;
mod inventory;
pub mod licensing;
mod metering;
// Each backend compiles the shared `queries/` files as its own modules, on purpose.
#[allow(clippy::duplicate_mod)]
mod postgres;
mod reclaim;
mod rows;
mod rules;
mod schema;
mod sites;
#[allow(clippy::duplicate_mod)]
mod sqlite;
mod summaries;
mod task_lock;
mod usage;
mod web_sessions;

use async_trait::async_trait;

pub use agents::{AgentFigures, AgentStore, Heartbeat};
pub use audit::{AuditNote, AuditOf, AuditStore};
pub use certificates::{CertificateImport, CertificateStore, LicenseTerms};
pub use error::{ErrorKind, StoreError};
pub use export::Exporting;
pub use hierarchy::{DeviceForSync, HierarchyStore, ReceivedDevice};
pub use import::{Importing, Progress};
pub use inventory::InventoryStore;
pub use licensing::{Generations, Licensing};
pub use metering::MeteringStore;
pub use postgres::PgStore;
pub use reclaim::ReclaimStore;
pub use rules::RuleStore;
pub use schema::{migrator_up_to, SchemaVersion};
pub use sites::{Forgotten, SiteStore};
pub use sqlite::SqliteStore;
pub use summaries::{MonthNames, SummaryStore, TaskPart, UsageOf};
pub use task_lock::TaskLock;
pub use usage::{UsageBatchRows, UsageQuery, UsageStore};
pub use web_sessions::{WebSession, WebSessionStore};

// Domain types the store reads and writes, defined in tally-core; re-exported here so callers
// that name them next to the store need one import.
pub use tally_core::agents::{NewAgent, NewEnrollmentToken};
pub use tally_core::history::{Snapshot, StatusChange};
pub use tally_core::import::ImportOutcome;
pub use tally_core::inventory::{DeviceInventory, Installation};
pub use tally_core::licenses::{AppRecord, Recognition};
pub use tally_core::org::OrgTarget;
pub use tally_core::summary::{RuleMonth, UsageBy, UsageByKind};
pub use tally_core::usage::{BatchOutcome, InsertOutcome, NewUsageRecord};

/// Every store trait, for callers: `use tally_store::prelude::*;`.
pub mod prelude {
    pub use crate::{
        AgentStore, AuditStore, CertificateStore, Exporting, HierarchyStore, Importing,
        InventoryStore, Licensing, MeteringStore, ReclaimStore, RuleStore, SiteStore, Store,
        StoreInfo, SummaryStore, UsageStore, WebSessionStore,
    };
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Keyset pagination: rows with an id greater than `after`, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub after: i64,
    pub limit: i64,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            after: 0,
            limit: 100,
        }
    }
}

/// Which backend a store is and the schema it holds.
#[async_trait]
pub trait StoreInfo: Send + Sync {
    /// Which backend this is, for logs and test names.
    fn backend(&self) -> &'static str;
    async fn schema_version(&self) -> Result<SchemaVersion>;
    /// The newest migration this binary ships, without asking the database: what a liveness
    /// probe may report while the database is down.
    fn schema_shipped(&self) -> i64;
    /// The connection pool's use now, for the metrics endpoint.
    fn pool_use(&self) -> PoolUse;
}

/// How many database connections a store holds, how many of them wait idle, and the most it
/// opens: a pool always at its maximum with none idle means requests queue for the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// Declares [`Store`] and implements it for every type with all its traits, so the list of
/// aggregates is written once.
macro_rules! union_of {
    ($(#[$doc:meta])* $name:ident = $($part:ident)+) => {
        $(#[$doc])*
        pub trait $name: $($part +)+ Send + Sync + 'static {}

        impl<T> $name for T where T: $($part +)+ Send + Sync + 'static {}
    };
}

union_of!(
    /// Everything Tally keeps: the union of the aggregates' traits. Implementations hold no
    /// business rules: they store and return domain values and enforce uniqueness.
    Store = StoreInfo SiteStore RuleStore UsageStore AgentStore InventoryStore SummaryStore
        Licensing Importing Exporting AuditStore WebSessionStore ReclaimStore CertificateStore MeteringStore HierarchyStore
);

/// Opens the store a URL names: `sqlite://PATH` (created if missing) or `postgres://…`.
/// Migrations are applied; a database newer than this binary is refused.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PgStore::open(url).await?))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(std::sync::Arc::new(
            SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    } else {
        Err(StoreError::BadUrl(url.to_string()))
    }
}
