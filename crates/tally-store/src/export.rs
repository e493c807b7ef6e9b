//! The stored estate read back as the rows `tally import` takes, by name rather than id, a page
//! at a time in id order so that millions of installations never sit in memory at once.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tally_core::import::{
    AnyRow, CustomValueRow, DeviceRow, InstallationRow, Kind, LicenseRow, OrgNodeRow, SessionRow,
    UserRow,
};

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

/// One exported row as stored: its id (the paging cursor) and the import row it becomes.
pub(crate) trait ExportRow {
    /// The query reading a page: `$1` is the cursor, `$2` the page's length.
    const SQL: &'static str;
    fn id(&self) -> i64;
    fn into_row(self) -> Result<AnyRow>;
}

#[derive(sqlx::FromRow)]
pub(crate) struct OrgNodeExport {
    id: i64,
    name: String,
    parent: Option<String>,
}

impl ExportRow for OrgNodeExport {
    const SQL: &'static str = "SELECT n.id, n.name, p.name AS parent FROM org_nodes n
         LEFT JOIN org_nodes p ON p.id = n.parent
         WHERE n.id > $1 ORDER BY n.id LIMIT $2";

    fn id(&self) -> i64 {
        self.id
    }

    fn into_row(self) -> Result<AnyRow> {
        let (name, parent) = (self.name, self.parent);
        Ok(AnyRow::OrgNode(OrgNodeRow { name, parent }))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeviceExport {
    id: i64,
    host_name: String,
    org_node: Option<String>,
    status: String,
    sockets: Option<i32>,
    cores: Option<i32>,
    pvu_per_core: Option<i32>,
    os: Option<String>,
    serial: Option<String>,
}

impl ExportRow for DeviceExport {
    const SQL: &'static str =
        "SELECT d.id, d.host_name, o.name AS org_node, d.status, d.sockets, d.cores,
             d.pvu_per_core, d.os, d.serial
         FROM devices d LEFT JOIN org_nodes o ON o.id = d.org_node
         WHERE d.id > $1 ORDER BY d.id LIMIT $2";

    fn id(&self) -> i64 {
        self.id
    }

    fn into_row(self) -> Result<AnyRow> {
        let status = tally_core::DeviceStatus::parse(&self.status)
            .ok_or_else(|| corrupt("devices.status", &self.status))?;
        Ok(AnyRow::Device(DeviceRow {
            host_name: self.host_name,
            org_node: self.org_node,
            status: Some(status),
            sockets: self.sockets,
            cores: self.cores,
            pvu_per_core: self.pvu_per_core,
            os: self.os,
            serial: self.serial,
        }))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserExport {
    id: i64,
    account: String,
    full_name: Option<String>,
    status: String,
    service_account: bool,
    org_node: Option<String>,
}

impl ExportRow for UserExport {
    const SQL: &'static str =
        "SELECT u.id, u.account, u.full_name, u.status, u.service_account, o.name AS org_node
         FROM users u LEFT JOIN org_nodes o ON o.id = u.org_node
         WHERE u.id > $1 ORDER BY u.id LIMIT $2";

    fn id(&self) -> i64 {
        self.id
    }

    fn into_row(self) -> Result<AnyRow> {
        let status = tally_core::UserStatus::parse(&self.status)
            .ok_or_else(|| corrupt("users.status", &self.status))?;
        Ok(AnyRow::User(UserRow {
            account: self.account,
            full_name: self.full_name,
            status: Some(status),
            service_account: Some(self.service_account),
            org_node: self.org_node,
        }))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionExport {
    id: i64,
    application: String,
    host_name: String,
    account: String,
    start_time: DateTime<Utc>,
    end_time: DateTime<Utc>,
}

impl ExportRow for SessionExport {
    const SQL: &'static str = "SELECT s.id, a.name AS application, d.host_name, u.account,
             s.start_time, s.end_time
         FROM usage_sessions s JOIN applications a ON a.id = s.application_id
             JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = s.user_id
         WHERE s.id > $1 AND a.removed_at IS NULL ORDER BY s.id LIMIT $2";

    fn id(&self) -> i64 {
        self.id
    }

    fn into_row(self) -> Result<AnyRow> {
        Ok(AnyRow::Session(SessionRow {
            application: self.application.into(),
            host_name: self.host_name.into(),
            account: self.account.into(),
            start: self.start_time,
            end: self.end_time,
        }))
    }
}

/// A license as exported: names instead of ids, the cost as a decimal.
#[derive(sqlx::FromRow)]
pub(crate) struct LicenseExport {
    id: i64,
    application: String,
    metric: String,
    quantity: i64,
    assignment_type: String,
    assigned_to: Option<String>,
    purchase_date: Option<NaiveDate>,
    valid_from: Option<NaiveDate>,
    valid_until: Option<NaiveDate>,
    maintenance_until: Option<NaiveDate>,
    unit_cost_minor: Option<i64>,
    currency: Option<String>,
    vendor: Option<String>,
    order_reference: Option<String>,
    notes: Option<String>,
}

impl ExportRow for LicenseExport {
    const SQL: &'static str =
        "SELECT l.id, a.name AS application, l.metric, l.quantity, l.assignment_type,
             CASE l.assignment_type WHEN 'computer' THEN d.host_name
                 WHEN 'user' THEN u.account ELSE o.name END AS assigned_to,
             l.purchase_date, l.valid_from, l.valid_until, l.maintenance_until,
             l.unit_cost_minor, l.currency, l.vendor, l.order_reference, l.notes
         FROM licenses l JOIN applications a ON a.id = l.application_id
             LEFT JOIN devices d ON d.id = l.assigned_to
             LEFT JOIN users u ON u.id = l.assigned_to
             LEFT JOIN org_nodes o ON o.id = l.assigned_to
         WHERE l.id > $1 AND l.removed_at IS NULL ORDER BY l.id LIMIT $2";

    fn id(&self) -> i64 {
        self.id
    }

    fn into_row(self) -> Result<AnyRow> {
        Ok(AnyRow::License(LicenseRow {
            application: self.application,
            metric: tally_core::Metric::parse(&self.metric)
                .ok_or_else(|| corrupt("licenses.metric", &self.metric))?,
            quantity: self.quantity,
            assignment_type: tally_core::AssignmentType::parse(&self.assignment_type)
                .ok_or_else(|| corrupt("licenses.assignment_type", &self.assignment_type))?,
            assigned_to: self.assigned_to,
            purchase_date: self.purchase_date,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            maintenance_until: self.maintenance_until,
            unit_cost: self.unit_cost_minor.map(tally_core::import::format_cost),
            currency: self.currency,
            vendor: self.vendor,
            order_reference: self.order_reference,
            notes: self.notes,
        }))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CustomValueExport {
    id: i64,
    application: String,
    org_node: Option<String>,
    quantity: i64,
}

impl ExportRow for CustomValueExport {
    const SQL: &'static str = "SELECT c.id, a.name AS application, o.name AS org_node, c.quantity
         FROM custom_values c JOIN applications a ON a.id = c.application_id
             LEFT JOIN org_nodes o ON o.id = c.org_node
         WHERE c.id > $1 AND a.removed_at IS NULL ORDER BY c.id LIMIT $2";

    fn id(&self) -> i64 {
        self.id
    }

    fn into_row(self) -> Result<AnyRow> {
        Ok(AnyRow::CustomValue(CustomValueRow {
            application: self.application,
            org_node: self.org_node,
            quantity: self.quantity,
        }))
    }
}

/// An installation as exported: host name, package, version, publisher, installed at.
pub(crate) type InstallationExport = (String, String, String, String, Option<DateTime<Utc>>);

/// An installation as its import row.
pub(crate) fn installation_row(
    (host_name, software, version, publisher, installed_at): InstallationExport,
) -> AnyRow {
    AnyRow::Installation(InstallationRow {
        host_name: host_name.into(),
        software: software.into(),
        version: version.into(),
        publisher: publisher.into(),
        installed_on: installed_at.map(|t| t.date_naive()),
    })
}

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
