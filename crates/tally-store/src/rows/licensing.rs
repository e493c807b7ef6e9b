//! Licensing rows: applications and their recognition, sessions, snapshots, status changes.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use tally_core::compliance::TotalUserMetric;
use tally_core::history::{Snapshot, StatusChange};
use tally_core::licenses::{AppRecord, Application, Recognition};
use tally_core::sessions::UsageSession;
use tally_core::{MeteringPeriod, Metric};

use crate::{Result, StoreError};

#[derive(sqlx::FromRow)]
pub(crate) struct RecognitionColumns {
    application_id: i64,
    software: String,
    publisher: String,
    version: String,
    metering_rule: String,
}

impl From<RecognitionColumns> for Recognition {
    fn from(r: RecognitionColumns) -> Self {
        Recognition {
            application_id: r.application_id,
            software: r.software,
            publisher: r.publisher,
            version: r.version,
            metering_rule: r.metering_rule,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApplicationColumns {
    id: i64,
    name: String,
    publisher: String,
    metric: String,
    period_days: Option<i32>,
    total_user_metric: String,
}

impl ApplicationColumns {
    /// The application with its recognition rules, taken from `recognition`.
    pub fn into_record(
        self,
        recognition: &mut HashMap<i64, Vec<Recognition>>,
    ) -> Result<AppRecord> {
        let metric = Metric::parse(&self.metric).ok_or(StoreError::Corrupt {
            column: "applications.metric",
            value: self.metric,
        })?;
        let total_user_metric = match self.total_user_metric.as_str() {
            "installation_users" => TotalUserMetric::InstallationUsers,
            "both" => TotalUserMetric::Both,
            _ => TotalUserMetric::MeteredUsers,
        };
        let metering_period = match self.period_days {
            Some(days) if days > 0 => MeteringPeriod::RollingDays { days: days as u32 },
            _ => MeteringPeriod::CurrentMonth,
        };
        Ok(AppRecord {
            application: Application {
                id: self.id,
                name: self.name,
                publisher: self.publisher,
                metric,
                metering_period,
            },
            total_user_metric,
            recognition: recognition.remove(&self.id).unwrap_or_default(),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionColumns {
    application_id: i64,
    device_id: i64,
    user_id: i64,
    start_time: DateTime<Utc>,
    end_time: DateTime<Utc>,
}

impl From<SessionColumns> for UsageSession {
    fn from(r: SessionColumns) -> Self {
        UsageSession {
            application_id: r.application_id,
            device_id: r.device_id,
            user_id: r.user_id,
            start_time: r.start_time,
            end_time: r.end_time,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SnapshotColumns {
    day: NaiveDate,
    application_id: i64,
    required: i64,
    owned: i64,
    covered: i64,
    shortfall: i64,
    surplus: i64,
    status: String,
}

impl From<SnapshotColumns> for Snapshot {
    fn from(r: SnapshotColumns) -> Self {
        Snapshot {
            day: r.day,
            application_id: r.application_id,
            required: r.required,
            owned: r.owned,
            covered: r.covered,
            shortfall: r.shortfall,
            surplus: r.surplus,
            status: r.status,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct StatusChangeColumns {
    subject: String,
    subject_id: i64,
    old_status: String,
}

impl From<StatusChangeColumns> for StatusChange {
    fn from(r: StatusChangeColumns) -> Self {
        StatusChange {
            subject: r.subject,
            subject_id: r.subject_id,
            old_status: r.old_status,
        }
    }
}
