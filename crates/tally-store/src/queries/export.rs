//! The stored estate read back as import rows.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use tally_core::import::Kind;

use super::{Db, DbStore};
use crate::export::{
    installation_row, next_cursor, CustomValueExport, DeviceExport, ExportPage, ExportRow,
    InstallationExport, LicenseExport, OrgNodeExport, SessionExport, UserExport,
};
use crate::Result;

/// A page of `T` after the cursor `after`, and the cursor after it.
async fn paged<T>(store: &DbStore, after: i64, limit: i64) -> Result<ExportPage>
where
    T: ExportRow + for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
{
    let rows: Vec<T> = sqlx::query_as(T::SQL)
        .bind(after)
        .bind(limit)
        .fetch_all(&store.pool)
        .await?;
    let rows: Vec<(i64, _)> = rows.into_iter().map(T::into_row).collect::<Result<_>>()?;
    let (ids, rows): (Vec<i64>, _) = rows.into_iter().unzip();
    Ok((rows, next_cursor(&ids, limit)))
}

/// Applications come with their recognition rules, so they are read as the API reads them.
async fn applications(store: &DbStore, after: i64, limit: i64) -> Result<ExportPage> {
    let mut apps = crate::Licensing::applications(store).await?;
    apps.sort_by_key(|a| a.application.id);
    apps.retain(|a| a.application.id > after);
    apps.truncate(usize::try_from(limit).unwrap_or(0));
    let ids: Vec<i64> = apps.iter().map(|a| a.application.id).collect();
    let rows = apps
        .into_iter()
        .map(crate::export::application_row)
        .collect();
    Ok((rows, next_cursor(&ids, limit)))
}

/// Installations are paged by device: every installation of up to `limit` devices.
async fn installations(store: &DbStore, after: i64, limit: i64) -> Result<ExportPage> {
    let devices: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM devices WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&store.pool)
            .await?;
    let Some(last) = devices.last().copied() else {
        return Ok((Vec::new(), None));
    };
    let rows: Vec<InstallationExport> = sqlx::query_as(
        "SELECT d.host_name, s.name, s.version, s.publisher, s.installed_at
         FROM installed_software s JOIN devices d ON d.id = s.device_id
         WHERE s.device_id > $1 AND s.device_id <= $2 AND s.removed_at IS NULL
         ORDER BY s.device_id, s.name",
    )
    .bind(after)
    .bind(last)
    .fetch_all(&store.pool)
    .await?;
    let rows = rows.into_iter().map(installation_row).collect();
    Ok((rows, next_cursor(&devices, limit)))
}

#[async_trait]
impl crate::Exporting for DbStore {
    async fn export_page(&self, kind: Kind, after: i64, limit: i64) -> Result<ExportPage> {
        match kind {
            Kind::OrgNodes => paged::<OrgNodeExport>(self, after, limit).await,
            Kind::Devices => paged::<DeviceExport>(self, after, limit).await,
            Kind::Users => paged::<UserExport>(self, after, limit).await,
            Kind::Applications => applications(self, after, limit).await,
            Kind::Installations => installations(self, after, limit).await,
            Kind::UsageSessions => paged::<SessionExport>(self, after, limit).await,
            Kind::Licenses => paged::<LicenseExport>(self, after, limit).await,
            Kind::CustomValues => paged::<CustomValueExport>(self, after, limit).await,
        }
    }
}
