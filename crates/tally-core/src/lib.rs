//! Tally's domain, free of I/O so that every rule in it can be tested exhaustively.
//!
//! Names follow the specification in `seeds/`: Configuration Manager's software metering
//! (`SMS_MeterData`, metering rules, sites) and the license-metric table. Storage lives in
//! `tally-store`, HTTP in `tally-server`; both speak the types defined here.

pub mod agents;
pub mod autorules;
pub mod certificates;
pub mod compliance;
pub mod device;
pub mod escape;
pub mod file;
pub mod hierarchy;
pub mod history;
pub mod import;
pub mod inventory;
pub mod licenses;
pub mod limits;
pub mod metering;
pub mod operators;
pub mod org;
pub mod policy;
pub mod pvu;
pub mod reclaim;
pub mod rule_index;
pub mod rules;
pub mod runs;
pub mod sessions;
pub mod site;
pub mod summary;
pub mod system_metering;
pub mod tasks;
pub mod usage;
pub mod user;
pub mod wire;

pub use device::{Device, DeviceStatus};
pub use file::FileInfo;
pub use licenses::{
    AppRecord, Application, AssignmentType, License, MeteringPeriod, Metric, Recognition,
};
pub use operators::{AuditEntry, OperatorToken, Role};
pub use org::OrgNode;
pub use rule_index::RuleIndex;
pub use rules::{MeteringRule, RuleOrigin};
pub use site::{Site, SiteCode};
pub use usage::{NewUsageRecord, UsageRecord};
pub use user::{User, UserStatus};

/// A value that failed domain validation; the message says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Timestamps are stored with microsecond precision, the finest PostgreSQL keeps; truncating on
/// the way in makes a value read back from either backend equal to the one written.
pub fn to_micros(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}
