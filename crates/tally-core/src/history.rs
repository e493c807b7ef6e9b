//! What was true on past days: each day's compliance figures, and the statuses devices and
//! users had before they changed (so a position can be computed as of a past day).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One application's compliance figures on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    pub day: NaiveDate,
    pub application_id: i64,
    pub required: i64,
    pub owned: i64,
    pub covered: i64,
    pub shortfall: i64,
    pub surplus: i64,
    pub status: String,
}

/// A device's or user's status before a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// `device` or `user`.
    pub subject: String,
    pub subject_id: i64,
    pub old_status: String,
}
