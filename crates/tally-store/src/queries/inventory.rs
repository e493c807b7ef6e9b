//! Devices' inventory.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::to_micros;

use super::{Db, DbStore};
use crate::rows;
use crate::Result;

/// Makes `software` the device's installed software at `at`, keeping history for
/// compliance on past days: a package still listed keeps its row (and the day it
/// was first seen), a new one gets a row from `at`, and one no longer listed is
/// marked removed at `at`.
async fn replace_installed(
    tx: &mut sqlx::Transaction<'_, Db>,
    device_id: i64,
    software: &[tally_core::wire::v1::InstalledSoftware],
    at: DateTime<Utc>,
) -> Result<()> {
    // Stored as every other time is, to the microsecond, so they compare as text too.
    let at = to_micros(at);
    let current: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM installed_software WHERE device_id = $1 AND removed_at IS NULL
             AND source IS NULL",
    )
    .bind(device_id)
    .fetch_all(&mut **tx)
    .await?;
    let listed: std::collections::HashSet<&str> =
        software.iter().map(|s| s.name.as_str()).collect();
    let gone: Vec<&String> = current
        .iter()
        .filter(|n| !listed.contains(n.as_str()))
        .collect();
    for chunk in gone.chunks(rows::INSERT_CHUNK) {
        let mut update =
            sqlx::QueryBuilder::<Db>::new("UPDATE installed_software SET removed_at = ");
        update
            .push_bind(at)
            .push(" WHERE removed_at IS NULL AND device_id = ");
        update.push_bind(device_id).push(" AND name IN (");
        let mut names = update.separated(", ");
        for name in chunk {
            names.push_bind(name.as_str());
        }
        update.push(")");
        update.build().execute(&mut **tx).await?;
    }
    // One statement may not update a row twice: the first entry of a name wins.
    let mut once = std::collections::HashSet::new();
    let software: Vec<_> = software.iter().filter(|s| once.insert(&s.name)).collect();
    for chunk in software.chunks(rows::INSERT_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO installed_software (device_id, name, version, publisher,
                 installed_at) ",
        );
        insert.push_values(chunk, |mut row, s| {
            row.push_bind(device_id)
                .push_bind(&s.name)
                .push_bind(&s.version)
                .push_bind(&s.publisher)
                .push_bind(at);
        });
        insert.push(
            " ON CONFLICT (device_id, name) WHERE removed_at IS NULL
             DO UPDATE SET version = excluded.version, publisher = excluded.publisher",
        );
        insert.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The classification a local account gives the user of the same name, with its reason:
/// the agent's reason (or "a person's account"), from the inventory of its device.
pub(super) const ACCOUNT_REASON: &str = "CASE WHEN la.service_account
         THEN COALESCE(la.reason, 'service account') ELSE 'a person''s account' END
     || ', from inventory of ' || d.host_name";

/// Gives the users named like the device's local accounts the inventory's classification
/// (seed 003: service accounts are not licensable), keeping an administrator's choice, and
/// the account's full name where the user has none.
async fn classify_users(tx: &mut sqlx::Transaction<'_, Db>, device_id: i64) -> Result<()> {
    let sql = format!(
        "UPDATE users SET
             service_account_derived = (SELECT la.service_account FROM local_accounts la
                 WHERE la.device_id = $1 AND la.name = users.account),
             service_account_reason = (SELECT {ACCOUNT_REASON}
                 FROM local_accounts la JOIN devices d ON d.id = la.device_id
                 WHERE la.device_id = $1 AND la.name = users.account),
             full_name = COALESCE(full_name, (SELECT la.full_name FROM local_accounts la
                 WHERE la.device_id = $1 AND la.name = users.account))
         WHERE account IN (SELECT name FROM local_accounts WHERE device_id = $1)"
    );
    sqlx::query(&sql).bind(device_id).execute(&mut **tx).await?;
    sqlx::query(
        "UPDATE users SET service_account =
             COALESCE(service_account_override, service_account_derived)
         WHERE account IN (SELECT name FROM local_accounts WHERE device_id = $1)",
    )
    .bind(device_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl crate::InventoryStore for DbStore {
    async fn put_inventory(
        &self,
        device_id: i64,
        inventory: &tally_core::wire::v1::Inventory,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let at = to_micros(at);
        // Reads the stored hash before it writes: on SQLite a deferred transaction that
        // reads first fails at once (busy) if another connection wrote in between.
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let stored: Option<Option<String>> =
            sqlx::query_scalar("SELECT inventory_hash FROM devices WHERE id = $1")
                .bind(device_id)
                .fetch_optional(&mut *tx)
                .await?;
        let unchanged = stored.flatten().as_deref() == Some(inventory.hash.as_str());
        let hw = &inventory.hardware;
        let update = if unchanged {
            sqlx::query("UPDATE devices SET last_seen = $1 WHERE id = $2")
                .bind(at)
                .bind(device_id)
        } else {
            sqlx::query(
                "UPDATE devices SET last_seen = $1, inventory_hash = $2,
                     os = COALESCE($3, os), cpu_model = $4, sockets = $5, cores = $6,
                     threads = $7, is_virtual = $8, serial = COALESCE($9, serial),
                     memory_bytes = $11, machine_id = COALESCE($12, machine_id)
                 WHERE id = $10",
            )
            .bind(at)
            .bind(&inventory.hash)
            .bind(&inventory.os)
            .bind(&hw.cpu_model)
            .bind(hw.sockets)
            .bind(hw.cores)
            .bind(hw.threads)
            .bind(hw.is_virtual)
            .bind(&hw.serial)
            .bind(device_id)
            .bind(hw.memory_bytes)
            .bind(&hw.machine_id)
        };
        update.execute(&mut *tx).await?;
        if unchanged {
            tx.commit().await?;
            return Ok(false);
        }
        for table in ["software_executables", "local_accounts"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE device_id = $1"))
                .bind(device_id)
                .execute(&mut *tx)
                .await?;
        }
        replace_installed(&mut tx, device_id, &inventory.software, at).await?;
        let executables: Vec<(&str, &str)> = inventory
            .software
            .iter()
            .flat_map(|s| {
                s.executables
                    .iter()
                    .map(move |e| (e.as_str(), s.name.as_str()))
            })
            .collect();
        for chunk in executables.chunks(rows::INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO software_executables (device_id, file_name, package) ",
            );
            insert.push_values(chunk, |mut row, (file, package)| {
                row.push_bind(device_id)
                    .push_bind(*file)
                    .push_bind(*package);
            });
            insert.push(" ON CONFLICT DO NOTHING");
            insert.build().execute(&mut *tx).await?;
        }
        for chunk in inventory.accounts.chunks(rows::INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO local_accounts (device_id, name, uid, full_name, shell, service_account, reason) ",
            );
            insert.push_values(chunk, |mut row, a| {
                row.push_bind(device_id)
                    .push_bind(&a.name)
                    .push_bind(i64::from(a.uid))
                    .push_bind(&a.full_name)
                    .push_bind(&a.shell)
                    .push_bind(a.service_account)
                    .push_bind(&a.reason);
            });
            insert.push(" ON CONFLICT DO NOTHING");
            insert.build().execute(&mut *tx).await?;
        }
        classify_users(&mut tx, device_id).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn installations(
        &self,
        file_name: &str,
    ) -> Result<Vec<tally_core::inventory::Installation>> {
        let query = sqlx::query_as::<_, rows::InstallationColumns>(
            "SELECT e.device_id, d.host_name, e.package, COALESCE(s.version, '') AS version,
                 e.file_name
             FROM software_executables e JOIN devices d ON d.id = e.device_id
             LEFT JOIN installed_software s
                 ON s.device_id = e.device_id AND s.name = e.package
                     AND s.removed_at IS NULL
             WHERE lower(e.file_name) = lower($1)
             ORDER BY d.host_name, e.device_id, e.package",
        )
        .bind(file_name);
        super::fetch_into(self, query).await
    }

    async fn device_inventory(
        &self,
        device_id: i64,
    ) -> Result<tally_core::inventory::DeviceInventory> {
        let software: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT name, version, publisher FROM installed_software
             WHERE device_id = $1 AND removed_at IS NULL ORDER BY name",
        )
        .bind(device_id)
        .fetch_all(&self.pool)
        .await?;
        let executables: Vec<(String, String)> = sqlx::query_as(
            "SELECT package, file_name FROM software_executables
             WHERE device_id = $1 ORDER BY package, file_name",
        )
        .bind(device_id)
        .fetch_all(&self.pool)
        .await?;
        let accounts: Vec<(String, i64, Option<String>, String, bool, Option<String>)> =
            sqlx::query_as(
                "SELECT name, uid, full_name, shell, service_account, reason
                 FROM local_accounts WHERE device_id = $1 ORDER BY name",
            )
            .bind(device_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows::device_inventory(software, executables, accounts))
    }

    async fn software_history(
        &self,
        device_id: i64,
    ) -> Result<Vec<tally_core::inventory::SoftwarePeriod>> {
        type Period = (
            String,
            String,
            String,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
        );
        let rows: Vec<Period> = sqlx::query_as(
            "SELECT name, version, publisher, installed_at, removed_at FROM installed_software
             WHERE device_id = $1 ORDER BY name, installed_at, removed_at",
        )
        .bind(device_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, version, publisher, installed_at, removed_at)| {
                tally_core::inventory::SoftwarePeriod {
                    name,
                    version,
                    publisher,
                    installed_at,
                    removed_at,
                }
            })
            .collect())
    }

    async fn executables_seen(&self) -> Result<Vec<tally_core::autorules::ExecutableSeen>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT file_name, MIN(package), COUNT(*) FROM software_executables
             GROUP BY file_name ORDER BY file_name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(file_name, package, devices)| tally_core::autorules::ExecutableSeen {
                    file_name,
                    package,
                    devices,
                },
            )
            .collect())
    }

    async fn inventoried_devices(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE inventory_hash IS NOT NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
