//! The stored estate read back as the rows `tally import` takes, by name rather than id, a page
//! at a time in id order so that millions of installations never sit in memory at once.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tally_core::import::{AnyRow, Kind, LicenseRow};

use crate::{Result, StoreError};

/// A page of rows and the cursor that continues after it (`None`: that was the last page).
pub type ExportPage = (Vec<AnyRow>, Option<i64>);

#[async_trait]
pub trait Exporting: Send + Sync {
    /// Up to `limit` rows of `kind` after the cursor `after` (0 to start). Installations are
    /// paged by device: a page holds every installation of up to `limit` devices.
    async fn export_page(&self, kind: Kind, after: i64, limit: i64) -> Result<ExportPage>;
}

/// The cursor after a page of `ids`: its last id, unless the page was short.
pub(crate) fn next_cursor(ids: &[i64], limit: i64) -> Option<i64> {
    match ids.last() {
        Some(last) if ids.len() as i64 >= limit => Some(*last),
        _ => None,
    }
}

pub(crate) fn corrupt(column: &'static str, value: &str) -> StoreError {
    StoreError::Corrupt {
        column,
        value: value.to_owned(),
    }
}

/// A license as exported: names instead of ids, the cost as a decimal.
#[derive(sqlx::FromRow)]
pub(crate) struct LicenseExport {
    pub id: i64,
    pub application: String,
    pub metric: String,
    pub quantity: i64,
    pub assignment_type: String,
    pub assigned_to: Option<String>,
    pub purchase_date: Option<NaiveDate>,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    pub maintenance_until: Option<NaiveDate>,
    pub unit_cost_minor: Option<i64>,
    pub currency: Option<String>,
    pub vendor: Option<String>,
    pub order_reference: Option<String>,
    pub notes: Option<String>,
}

impl TryFrom<LicenseExport> for LicenseRow {
    type Error = StoreError;

    fn try_from(l: LicenseExport) -> Result<LicenseRow> {
        Ok(LicenseRow {
            application: l.application,
            metric: tally_core::Metric::parse(&l.metric)
                .ok_or_else(|| corrupt("licenses.metric", &l.metric))?,
            quantity: l.quantity,
            assignment_type: tally_core::AssignmentType::parse(&l.assignment_type)
                .ok_or_else(|| corrupt("licenses.assignment_type", &l.assignment_type))?,
            assigned_to: l.assigned_to,
            purchase_date: l.purchase_date,
            valid_from: l.valid_from,
            valid_until: l.valid_until,
            maintenance_until: l.maintenance_until,
            unit_cost: l.unit_cost_minor.map(tally_core::import::format_cost),
            currency: l.currency,
            vendor: l.vendor,
            order_reference: l.order_reference,
            notes: l.notes,
        })
    }
}

/// A user as exported: id, account, full name, status, service account, org node's name.
pub(crate) type UserExport = (i64, String, Option<String>, String, bool, Option<String>);

/// An installation as exported: host name, package, version, publisher, installed at.
pub(crate) type InstallationExport = (String, String, String, String, Option<DateTime<Utc>>);

/// A usage session as exported.
pub(crate) type SessionExport = (i64, String, String, String, DateTime<Utc>, DateTime<Utc>);

/// An application as its import row: the first recognition rule, as import stores one.
pub(crate) fn application_row(a: tally_core::licenses::AppRecord) -> AnyRow {
    let rule = a.recognition.into_iter().next();
    let text = |s: String| Some(s).filter(|s| !s.is_empty());
    let period_days = match a.application.metering_period {
        tally_core::MeteringPeriod::RollingDays { days } => Some(days),
        tally_core::MeteringPeriod::CurrentMonth => None,
    };
    let (software, software_publisher, software_version, metering_rule) = match rule {
        Some(r) => (
            text(r.software),
            text(r.publisher),
            text(r.version),
            text(r.metering_rule),
        ),
        None => (None, None, None, None),
    };
    AnyRow::Application(tally_core::import::ApplicationRow {
        name: a.application.name,
        publisher: a.application.publisher,
        metric: a.application.metric,
        period_days,
        total_user_metric: Some(a.total_user_metric),
        software,
        software_publisher,
        software_version,
        metering_rule,
    })
}
