//! The stored estate read back as import rows.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;

use super::DbStore;

async fn export_org_nodes(
    store: &DbStore,
    after: i64,
    limit: i64,
) -> crate::Result<crate::export::ExportPage> {
    let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT n.id, n.name, p.name FROM org_nodes n
         LEFT JOIN org_nodes p ON p.id = n.parent
         WHERE n.id > $1 ORDER BY n.id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let rows = rows
        .into_iter()
        .map(|(_, name, parent)| {
            tally_core::import::AnyRow::OrgNode(tally_core::import::OrgNodeRow { name, parent })
        })
        .collect();
    Ok((rows, crate::export::next_cursor(&ids, limit)))
}

async fn export_devices(
    store: &DbStore,
    after: i64,
    limit: i64,
) -> crate::Result<crate::export::ExportPage> {
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        i64,
        String,
        Option<String>,
        String,
        Option<i32>,
        Option<i32>,
        Option<i32>,
        Option<String>,
        Option<String>,
    )> = sqlx::query_as(
        "SELECT d.id, d.host_name, o.name, d.status, d.sockets, d.cores, d.pvu_per_core,
             d.os, d.serial
         FROM devices d LEFT JOIN org_nodes o ON o.id = d.org_node
         WHERE d.id > $1 ORDER BY d.id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let mut out = Vec::with_capacity(rows.len());
    for (_, host_name, org_node, status, sockets, cores, pvu_per_core, os, serial) in rows {
        let status = tally_core::DeviceStatus::parse(&status)
            .ok_or_else(|| crate::export::corrupt("devices.status", &status))?;
        out.push(tally_core::import::AnyRow::Device(
            tally_core::import::DeviceRow {
                host_name,
                org_node,
                status: Some(status),
                sockets,
                cores,
                pvu_per_core,
                os,
                serial,
            },
        ));
    }
    Ok((out, crate::export::next_cursor(&ids, limit)))
}

async fn export_users(
    store: &DbStore,
    after: i64,
    limit: i64,
) -> crate::Result<crate::export::ExportPage> {
    let rows: Vec<crate::export::UserExport> = sqlx::query_as(
        "SELECT u.id, u.account, u.full_name, u.status, u.service_account, o.name
             FROM users u LEFT JOIN org_nodes o ON o.id = u.org_node
             WHERE u.id > $1 ORDER BY u.id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let mut out = Vec::with_capacity(rows.len());
    for (_, account, full_name, status, service_account, org_node) in rows {
        let status = tally_core::UserStatus::parse(&status)
            .ok_or_else(|| crate::export::corrupt("users.status", &status))?;
        out.push(tally_core::import::AnyRow::User(
            tally_core::import::UserRow {
                account,
                full_name,
                status: Some(status),
                service_account: Some(service_account),
                org_node,
            },
        ));
    }
    Ok((out, crate::export::next_cursor(&ids, limit)))
}

async fn export_applications(
    store: &DbStore,
    after: i64,
    limit: i64,
) -> crate::Result<crate::export::ExportPage> {
    let mut apps = crate::Licensing::applications(store).await?;
    apps.sort_by_key(|a| a.application.id);
    apps.retain(|a| a.application.id > after);
    apps.truncate(usize::try_from(limit).unwrap_or(0));
    let ids: Vec<i64> = apps.iter().map(|a| a.application.id).collect();
    let rows = apps
        .into_iter()
        .map(crate::export::application_row)
        .collect();
    Ok((rows, crate::export::next_cursor(&ids, limit)))
}

async fn export_installations(
    store: &DbStore,
    after: i64,
    limit: i64,
) -> crate::Result<crate::export::ExportPage> {
    let devices: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM devices WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&store.pool)
            .await?;
    let Some(last) = devices.last().copied() else {
        return Ok((Vec::new(), None));
    };
    let rows: Vec<crate::export::InstallationExport> = sqlx::query_as(
        "SELECT d.host_name, s.name, s.version, s.publisher, s.installed_at
         FROM installed_software s JOIN devices d ON d.id = s.device_id
         WHERE s.device_id > $1 AND s.device_id <= $2 AND s.removed_at IS NULL
         ORDER BY s.device_id, s.name",
    )
    .bind(after)
    .bind(last)
    .fetch_all(&store.pool)
    .await?;
    let rows = rows
        .into_iter()
        .map(|(host_name, software, version, publisher, installed_at)| {
            tally_core::import::AnyRow::Installation(tally_core::import::InstallationRow {
                host_name: host_name.into(),
                software: software.into(),
                version: version.into(),
                publisher: publisher.into(),
                installed_on: installed_at.map(|t| t.date_naive()),
            })
        })
        .collect();
    Ok((rows, crate::export::next_cursor(&devices, limit)))
}

async fn export_sessions(
    store: &DbStore,
    after: i64,
    limit: i64,
) -> crate::Result<crate::export::ExportPage> {
    let rows: Vec<crate::export::SessionExport> = sqlx::query_as(
        "SELECT s.id, a.name, d.host_name, u.account, s.start_time, s.end_time
         FROM usage_sessions s JOIN applications a ON a.id = s.application_id
             JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = s.user_id
         WHERE s.id > $1 ORDER BY s.id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let rows = rows
        .into_iter()
        .map(|(_, application, host_name, account, start, end)| {
            tally_core::import::AnyRow::Session(tally_core::import::SessionRow {
                application: application.into(),
                host_name: host_name.into(),
                account: account.into(),
                start,
                end,
            })
        })
        .collect();
    Ok((rows, crate::export::next_cursor(&ids, limit)))
}

async fn export_licenses(
    store: &DbStore,
    after: i64,
    limit: i64,
) -> crate::Result<crate::export::ExportPage> {
    let rows: Vec<crate::export::LicenseExport> = sqlx::query_as(
        "SELECT l.id, a.name AS application, l.metric, l.quantity, l.assignment_type,
             CASE l.assignment_type WHEN 'computer' THEN d.host_name
                 WHEN 'user' THEN u.account ELSE o.name END AS assigned_to,
             l.purchase_date, l.valid_from, l.valid_until, l.maintenance_until,
             l.unit_cost_minor, l.currency, l.vendor, l.order_reference, l.notes
         FROM licenses l JOIN applications a ON a.id = l.application_id
             LEFT JOIN devices d ON d.id = l.assigned_to
             LEFT JOIN users u ON u.id = l.assigned_to
             LEFT JOIN org_nodes o ON o.id = l.assigned_to
         WHERE l.id > $1 ORDER BY l.id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let rows = rows
        .into_iter()
        .map(|l| Ok(tally_core::import::AnyRow::License(l.try_into()?)))
        .collect::<crate::Result<_>>()?;
    Ok((rows, crate::export::next_cursor(&ids, limit)))
}

async fn export_custom_values(
    store: &DbStore,
    after: i64,
    limit: i64,
) -> crate::Result<crate::export::ExportPage> {
    let rows: Vec<(i64, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT c.id, a.name, o.name, c.quantity
         FROM custom_values c JOIN applications a ON a.id = c.application_id
             LEFT JOIN org_nodes o ON o.id = c.org_node
         WHERE c.id > $1 ORDER BY c.id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let rows = rows
        .into_iter()
        .map(|(_, application, org_node, quantity)| {
            tally_core::import::AnyRow::CustomValue(tally_core::import::CustomValueRow {
                application,
                org_node,
                quantity,
            })
        })
        .collect();
    Ok((rows, crate::export::next_cursor(&ids, limit)))
}

#[async_trait]
impl crate::Exporting for DbStore {
    async fn export_page(
        &self,
        kind: tally_core::import::Kind,
        after: i64,
        limit: i64,
    ) -> crate::Result<crate::export::ExportPage> {
        use tally_core::import::Kind;
        match kind {
            Kind::OrgNodes => export_org_nodes(self, after, limit).await,
            Kind::Devices => export_devices(self, after, limit).await,
            Kind::Users => export_users(self, after, limit).await,
            Kind::Applications => export_applications(self, after, limit).await,
            Kind::Installations => export_installations(self, after, limit).await,
            Kind::UsageSessions => export_sessions(self, after, limit).await,
            Kind::Licenses => export_licenses(self, after, limit).await,
            Kind::CustomValues => export_custom_values(self, after, limit).await,
        }
    }
}
