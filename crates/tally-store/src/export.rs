//! The stored estate read back as the rows `tally import` takes, by name rather than id, a page
//! at a time in id order so that millions of installations never sit in memory at once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::import::{
    AnyRow, CustomValueRow, DeviceRow, InstallationRow, Kind, LicenseRow, OrgNodeRow, SessionRow,
    UserRow,
};

use crate::rows::{DeviceColumns, LicenseColumns, UserColumns};
use crate::Result;

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

/// One exported row as stored, which becomes its id (the paging cursor) and its import row.
pub(crate) trait ExportRow {
    /// The query reading a page: `$1` is the cursor, `$2` the page's length.
    const SQL: &'static str;
    fn into_row(self) -> Result<(i64, AnyRow)>;
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

    fn into_row(self) -> Result<(i64, AnyRow)> {
        let (name, parent) = (self.name, self.parent);
        Ok((self.id, AnyRow::OrgNode(OrgNodeRow { name, parent })))
    }
}

/// A device as exported: the stored device with its org node's name.
#[derive(sqlx::FromRow)]
pub(crate) struct DeviceExport {
    #[sqlx(flatten)]
    device: DeviceColumns,
    org_node_name: Option<String>,
}

impl ExportRow for DeviceExport {
    const SQL: &'static str = "SELECT d.*, o.name AS org_node_name
         FROM devices d LEFT JOIN org_nodes o ON o.id = d.org_node
         WHERE d.id > $1 ORDER BY d.id LIMIT $2";

    fn into_row(self) -> Result<(i64, AnyRow)> {
        let device = self.device.into_device()?;
        let id = device.id;
        Ok((
            id,
            AnyRow::Device(DeviceRow::exported(device, self.org_node_name)),
        ))
    }
}

/// A user as exported: the stored user with its org node's name.
#[derive(sqlx::FromRow)]
pub(crate) struct UserExport {
    #[sqlx(flatten)]
    user: UserColumns,
    org_node_name: Option<String>,
}

impl ExportRow for UserExport {
    const SQL: &'static str = "SELECT u.*, o.name AS org_node_name
         FROM users u LEFT JOIN org_nodes o ON o.id = u.org_node
         WHERE u.id > $1 ORDER BY u.id LIMIT $2";

    fn into_row(self) -> Result<(i64, AnyRow)> {
        let user = self.user.into_user()?;
        Ok((
            user.id,
            AnyRow::User(UserRow::exported(user, self.org_node_name)),
        ))
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

    fn into_row(self) -> Result<(i64, AnyRow)> {
        let row = SessionRow {
            application: self.application.into(),
            host_name: self.host_name.into(),
            account: self.account.into(),
            start: self.start_time,
            end: self.end_time,
        };
        Ok((self.id, AnyRow::Session(row)))
    }
}

/// A license as exported: the stored license with the names of its application and of what
/// it is assigned to.
#[derive(sqlx::FromRow)]
pub(crate) struct LicenseExport {
    #[sqlx(flatten)]
    license: LicenseColumns,
    application: String,
    assigned_name: Option<String>,
}

impl ExportRow for LicenseExport {
    const SQL: &'static str = "SELECT l.*, a.name AS application,
             CASE l.assignment_type WHEN 'computer' THEN d.host_name
                 WHEN 'user' THEN u.account ELSE o.name END AS assigned_name
         FROM licenses l JOIN applications a ON a.id = l.application_id
             LEFT JOIN devices d ON d.id = l.assigned_to
             LEFT JOIN users u ON u.id = l.assigned_to
             LEFT JOIN org_nodes o ON o.id = l.assigned_to
         WHERE l.id > $1 AND l.removed_at IS NULL ORDER BY l.id LIMIT $2";

    fn into_row(self) -> Result<(i64, AnyRow)> {
        let license = tally_core::License::try_from(self.license)?;
        let id = license.id;
        let row = LicenseRow::exported(license, self.application, self.assigned_name);
        Ok((id, AnyRow::License(row)))
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

    fn into_row(self) -> Result<(i64, AnyRow)> {
        let row = CustomValueRow {
            application: self.application,
            org_node: self.org_node,
            quantity: self.quantity,
        };
        Ok((self.id, AnyRow::CustomValue(row)))
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
