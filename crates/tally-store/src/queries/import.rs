//! The one-transaction import.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::to_micros;

use super::{Db, DbStore};
use crate::Result;

/// Upserts org nodes parents first; returns name → id for every stored node.
async fn import_org_nodes(
    tx: &mut sqlx::Transaction<'_, Db>,
    rows: &tally_core::import::Rows<tally_core::import::OrgNodeRow>,
) -> Result<crate::import::Ids> {
    let stored: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM org_nodes")
        .fetch_all(&mut **tx)
        .await?;
    let mut ids: crate::import::Ids = stored.into_iter().map(|(id, name)| (name, id)).collect();
    let mut pending: Vec<&tally_core::import::OrgNodeRow> = rows.iter().map(|(_, r)| r).collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut later = Vec::new();
        for row in pending {
            let parent = row.parent.as_deref().filter(|p| !p.is_empty());
            let waiting = parent.is_some_and(|p| {
                !ids.contains_key(p)
                    || rows
                        .iter()
                        .any(|(_, r)| r.name == p && !ids.contains_key(&r.name))
            });
            if waiting {
                later.push(row);
                continue;
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO org_nodes (name, parent) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET parent = excluded.parent RETURNING id",
            )
            .bind(&row.name)
            .bind(parent.and_then(|p| ids.get(p).copied()))
            .fetch_one(&mut **tx)
            .await?;
            ids.insert(row.name.clone(), id);
        }
        if later.len() == before {
            return Err(crate::StoreError::Conflict(
                "org nodes refer to parents that never resolve".into(),
            ));
        }
        pending = later;
    }
    Ok(ids)
}

async fn import_devices(
    tx: &mut sqlx::Transaction<'_, Db>,
    rows: &tally_core::import::Rows<tally_core::import::DeviceRow>,
    nodes: &crate::import::Ids,
    site: &tally_core::SiteCode,
    at: DateTime<Utc>,
) -> Result<crate::import::Ids> {
    let stored: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, host_name, status FROM devices
         WHERE id IN (SELECT MIN(id) FROM devices GROUP BY host_name)",
    )
    .fetch_all(&mut **tx)
    .await?;
    let was: std::collections::HashMap<i64, String> = stored
        .iter()
        .map(|(id, _, status)| (*id, status.clone()))
        .collect();
    let mut ids: crate::import::Ids = stored.into_iter().map(|(id, host, _)| (host, id)).collect();
    let node = |n: &Option<String>| n.as_deref().and_then(|n| nodes.get(n).copied());
    let status = |s: Option<tally_core::DeviceStatus>| s.map(|s| s.as_str());
    let (old, new): (Vec<_>, Vec<_>) = rows
        .iter()
        .map(|(_, r)| r)
        .partition(|r| ids.contains_key(&r.host_name));
    let changes: Vec<(i64, &str)> = old
        .iter()
        .filter_map(|r| {
            let id = ids[&r.host_name];
            let before = was[&id].as_str();
            (status(r.status).is_some_and(|s| s != before)).then_some((id, before))
        })
        .collect();
    record_status_changes(tx, "device", &changes, at).await?;
    for r in old {
        sqlx::query(
            "UPDATE devices SET org_node = COALESCE($1, org_node),
                 status = COALESCE($2, status), sockets = COALESCE($3, sockets),
                 cores = COALESCE($4, cores), pvu_per_core = COALESCE($5, pvu_per_core),
                 os = COALESCE($6, os), serial = COALESCE($7, serial)
             WHERE id = $8",
        )
        .bind(node(&r.org_node))
        .bind(status(r.status))
        .bind(r.sockets)
        .bind(r.cores)
        .bind(r.pvu_per_core)
        .bind(&r.os)
        .bind(&r.serial)
        .bind(ids[&r.host_name])
        .execute(&mut **tx)
        .await?;
    }
    let at = to_micros(at);
    for chunk in new.chunks(crate::import::CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO devices (site_code, host_name, org_node, status, sockets, cores,
                 pvu_per_core, os, serial, created_at) ",
        );
        insert.push_values(chunk, |mut b, r| {
            b.push_bind(site.as_str())
                .push_bind(&r.host_name)
                .push_bind(node(&r.org_node))
                .push_bind(status(r.status).unwrap_or("active"))
                .push_bind(r.sockets)
                .push_bind(r.cores)
                .push_bind(r.pvu_per_core)
                .push_bind(&r.os)
                .push_bind(&r.serial)
                .push_bind(at);
        });
        insert.push(" RETURNING id, host_name");
        let created: Vec<(i64, String)> = insert.build_query_as().fetch_all(&mut **tx).await?;
        ids.extend(created.into_iter().map(|(id, host)| (host, id)));
    }
    Ok(ids)
}

/// Keeps each subject's status before this change, for compliance on past days.
async fn record_status_changes(
    tx: &mut sqlx::Transaction<'_, Db>,
    subject: &str,
    changes: &[(i64, &str)],
    at: DateTime<Utc>,
) -> Result<()> {
    for chunk in changes.chunks(crate::import::CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO status_changes (subject, subject_id, old_status, changed_at) ",
        );
        insert.push_values(chunk, |mut b, (id, old)| {
            b.push_bind(subject)
                .push_bind(*id)
                .push_bind(*old)
                .push_bind(to_micros(at));
        });
        insert.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn import_users(
    tx: &mut sqlx::Transaction<'_, Db>,
    rows: &tally_core::import::Rows<tally_core::import::UserRow>,
    nodes: &crate::import::Ids,
    at: DateTime<Utc>,
) -> Result<crate::import::Ids> {
    let stored: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, account, status FROM users")
            .fetch_all(&mut **tx)
            .await?;
    let mut latest = std::collections::HashMap::new();
    for (_, r) in rows {
        latest.insert(
            r.account.as_str(),
            r.status.unwrap_or(tally_core::UserStatus::Active).as_str(),
        );
    }
    let changes: Vec<(i64, &str)> = stored
        .iter()
        .filter(|(_, account, before)| {
            latest
                .get(account.as_str())
                .is_some_and(|now| now != before)
        })
        .map(|(id, _, before)| (*id, before.as_str()))
        .collect();
    record_status_changes(tx, "user", &changes, at).await?;
    for chunk in rows.chunks(crate::import::CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO users (account, full_name, status, service_account,
                 service_account_derived, service_account_reason, org_node) ",
        );
        insert.push_values(chunk, |mut b, (_, r)| {
            // A row without the column keeps what inventory or an earlier import said.
            let reason = r.service_account.map(|s| match s {
                true => "service account, from import",
                false => "a person's account, from import",
            });
            b.push_bind(&r.account)
                .push_bind(&r.full_name)
                .push_bind(r.status.unwrap_or(tally_core::UserStatus::Active).as_str())
                .push_bind(r.service_account.unwrap_or(false))
                .push_bind(r.service_account.unwrap_or(false))
                .push_bind(reason)
                .push_bind(r.org_node.as_deref().and_then(|n| nodes.get(n).copied()));
        });
        insert.push(
            " ON CONFLICT (account) DO UPDATE SET
                 full_name = COALESCE(excluded.full_name, users.full_name),
                 status = excluded.status,
                 service_account_derived = CASE WHEN excluded.service_account_reason IS NULL
                     THEN users.service_account_derived ELSE excluded.service_account_derived END,
                 service_account_reason = COALESCE(excluded.service_account_reason,
                     users.service_account_reason),
                 service_account = COALESCE(users.service_account_override,
                     CASE WHEN excluded.service_account_reason IS NULL
                     THEN users.service_account_derived ELSE excluded.service_account_derived END),
                 org_node = COALESCE(excluded.org_node, users.org_node)",
        );
        insert.build().execute(&mut **tx).await?;
    }
    let stored: Vec<(i64, String)> = sqlx::query_as("SELECT id, account FROM users")
        .fetch_all(&mut **tx)
        .await?;
    Ok(stored
        .into_iter()
        .map(|(id, account)| (account, id))
        .collect())
}

async fn import_applications(
    tx: &mut sqlx::Transaction<'_, Db>,
    rows: &tally_core::import::Rows<tally_core::import::ApplicationRow>,
    at: DateTime<Utc>,
) -> Result<crate::import::Ids> {
    for (_, r) in rows {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO applications (name, publisher, metric, period_days,
                 total_user_metric, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO UPDATE SET publisher = excluded.publisher,
                 metric = excluded.metric, period_days = excluded.period_days,
                 total_user_metric = excluded.total_user_metric, removed_at = NULL
             RETURNING id",
        )
        .bind(&r.name)
        .bind(&r.publisher)
        .bind(r.metric.as_str())
        .bind(r.period_days.map(|d| d as i32))
        .bind(crate::import::user_metric_name(r.total_user_metric))
        .bind(to_micros(at))
        .fetch_one(&mut **tx)
        .await?;
        let software = r.software.clone().unwrap_or_default();
        let rule = r.metering_rule.clone().unwrap_or_default();
        if software.is_empty() && rule.is_empty() {
            continue;
        }
        sqlx::query("DELETE FROM recognition_rules WHERE application_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO recognition_rules (application_id, software, publisher, version,
                 metering_rule) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(software)
        .bind(r.software_publisher.clone().unwrap_or_default())
        .bind(r.software_version.clone().unwrap_or_default())
        .bind(rule)
        .execute(&mut **tx)
        .await?;
    }
    let stored: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM applications")
        .fetch_all(&mut **tx)
        .await?;
    Ok(stored.into_iter().map(|(id, name)| (name, id)).collect())
}

async fn import_installations(
    tx: &mut sqlx::Transaction<'_, Db>,
    rows: &tally_core::import::Rows<tally_core::import::InstallationRow>,
    devices: &crate::import::Ids,
    progress: crate::Progress<'_>,
    (done, bulk): (&mut u64, bool),
) -> Result<u64> {
    // The last row for a (device, software) wins; one statement may not touch a
    // row twice.
    let mut latest = std::collections::HashMap::new();
    for (_, r) in rows {
        let device = crate::import::resolve(devices, &r.host_name, "device")?;
        latest.insert((device, &*r.software), r);
    }
    // In the order of the index the upsert looks each row up in: its pages are written one
    // after the other instead of at random.
    let mut rows: Vec<_> = latest.into_iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let aside = SetAside::take_if(bulk, tx, &INSTALLATIONS_ASIDE).await?;
    for chunk in rows.chunks(crate::import::CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO installed_software (device_id, name, version, publisher,
                 installed_at) ",
        );
        insert.push_values(chunk, |mut b, ((device, name), r)| {
            let installed = r
                .installed_on
                .map(|d| to_micros(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()));
            b.push_bind(*device)
                .push_bind(*name)
                .push_bind(&*r.version)
                .push_bind(&*r.publisher)
                .push_bind(installed);
        });
        insert.push(
            " ON CONFLICT (device_id, name) WHERE removed_at IS NULL
             DO UPDATE SET version = excluded.version, publisher = excluded.publisher,
                 installed_at = COALESCE(excluded.installed_at, installed_software.installed_at)",
        );
        insert.build().execute(&mut **tx).await?;
        *done += chunk.len() as u64;
        progress(*done);
    }
    if let Some(aside) = aside {
        aside.put_back(tx).await?;
        // What the inventory triggers set aside did: each device's generation moves once.
        let mut touched: Vec<i64> = rows.iter().map(|((device, _), _)| *device).collect();
        touched.dedup();
        for chunk in touched.chunks(crate::import::CHUNK) {
            let mut update = sqlx::QueryBuilder::<Db>::new(
                "UPDATE devices SET inventory_generation = inventory_generation + 1 WHERE id IN (",
            );
            let mut ids = update.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            update.push(")").build().execute(&mut **tx).await?;
        }
    }
    Ok(rows.len() as u64)
}

async fn import_sessions(
    tx: &mut sqlx::Transaction<'_, Db>,
    rows: &tally_core::import::Rows<tally_core::import::SessionRow>,
    ids: (
        &crate::import::Ids,
        &crate::import::Ids,
        &crate::import::Ids,
    ),
    progress: crate::Progress<'_>,
    (done, bulk): (&mut u64, bool),
) -> Result<()> {
    let (apps, devices, users) = ids;
    let aside = SetAside::take_if(bulk, tx, &SESSIONS_ASIDE).await?;
    for chunk in rows.chunks(crate::import::CHUNK) {
        let mut resolved = Vec::with_capacity(chunk.len());
        for (_, r) in chunk {
            resolved.push((
                crate::import::resolve(apps, &r.application, "application")?,
                crate::import::resolve(devices, &r.host_name, "device")?,
                crate::import::resolve(users, &r.account, "user")?,
                to_micros(r.start),
                to_micros(r.end),
            ));
        }
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO usage_sessions (application_id, device_id, user_id, start_time,
                 end_time) ",
        );
        insert.push_values(resolved, |mut b, (app, device, user, start, end)| {
            b.push_bind(app)
                .push_bind(device)
                .push_bind(user)
                .push_bind(start)
                .push_bind(end);
        });
        insert.build().execute(&mut **tx).await?;
        *done += chunk.len() as u64;
        progress(*done);
    }
    if let Some(aside) = aside {
        aside.put_back(tx).await?;
    }
    Ok(())
}

/// The fewest new rows of a table loaded with its indexes and triggers set aside.
const BULK_ROWS: usize = 100_000;

/// The usage sessions' time index and their row trigger. Copying 10,000,000 sessions into
/// SQLite with them took 134 s (every row a random insert into an index far larger than the
/// page cache, and a counter update); without them 5.7 s, then building the index 21.6–27 s
/// (BENCHMARKS.md).
const SESSIONS_ASIDE: [&str; 2] = [
    "usage_sessions_application",
    "usage_sessions_insert_observed",
];

/// The installations' title index and the row triggers an insert or an upsert fires (the
/// `observed` generation and the device's inventory generation, two row updates for every
/// installation). The unique index on the current (device, name) stays: the upsert needs it.
const INSTALLATIONS_ASIDE: [&str; 5] = [
    "installed_software_title",
    "installed_software_insert_observed",
    "installed_software_update_observed",
    "installed_software_insert_inventory",
    "installed_software_update_inventory",
];

/// Which of an import's large tables are loaded with their indexes and triggers set aside.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Bulk {
    pub installations: bool,
    pub sessions: bool,
}

impl Bulk {
    /// Whether new rows are loaded faster by rebuilding a table's indexes afterwards than by
    /// inserting into them: on SQLite, when they are many and at least half as many as those
    /// stored (the rebuild reads every stored row again). Asked before the import's
    /// transaction begins, as its temporary storage must be chosen then; a write in between
    /// can only make the choice a little less apt, never wrong.
    async fn of(
        conn: &mut <Db as sqlx::Database>::Connection,
        batch: &tally_core::import::Batch,
    ) -> Result<Self> {
        Ok(Self {
            installations: bulk_load(conn, "installed_software", batch.installations.len()).await?,
            sessions: bulk_load(conn, "usage_sessions", batch.sessions.len()).await?,
        })
    }

    fn any(self) -> bool {
        self.installations || self.sessions
    }
}

async fn bulk_load(
    conn: &mut <Db as sqlx::Database>::Connection,
    table: &str,
    new: usize,
) -> Result<bool> {
    if super::NAME != "sqlite" || new < BULK_ROWS {
        return Ok(false);
    }
    // `table` is one of this module's names, never input.
    let stored: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(conn)
        .await?;
    Ok(new as i64 >= stored / 2)
}

/// SQLite indexes and triggers dropped for a bulk load and created again, from the statements
/// the schema holds, in the same transaction: a failed import rolls back with them in place,
/// and readers never see the table without them. Every set includes the table's `observed`
/// trigger, so putting one back moves `observed` once for all the rows loaded meanwhile.
struct SetAside(Vec<String>);

impl SetAside {
    /// [`Self::take`] when `bulk`, else nothing set aside.
    async fn take_if(
        bulk: bool,
        tx: &mut sqlx::Transaction<'_, Db>,
        names: &[&str],
    ) -> Result<Option<Self>> {
        Ok(match bulk {
            true => Some(Self::take(tx, names).await?),
            false => None,
        })
    }

    async fn take(tx: &mut sqlx::Transaction<'_, Db>, names: &[&str]) -> Result<Self> {
        let mut creates = Vec::with_capacity(names.len());
        for name in names {
            let (kind, create): (String, String) =
                sqlx::query_as("SELECT type, sql FROM sqlite_master WHERE name = $1")
                    .bind(name)
                    .fetch_one(&mut **tx)
                    .await?;
            // `name` is one of this module's constants, never input.
            sqlx::query(&format!("DROP {kind} {name}"))
                .execute(&mut **tx)
                .await?;
            creates.push(create);
        }
        Ok(Self(creates))
    }

    /// SQLite's sort for an index keeps as much in memory as the page cache may hold, on top
    /// of the cache: the import's 256 MB cache is lowered to 64 MB meanwhile (pages beyond it
    /// go to the WAL, in order). Then `observed` moves, once.
    async fn put_back(self, tx: &mut sqlx::Transaction<'_, Db>) -> Result<()> {
        sqlx::query(INDEX_BUILD_CACHE).execute(&mut **tx).await?;
        for create in self.0 {
            sqlx::query(&create).execute(&mut **tx).await?;
        }
        sqlx::query(IMPORT_CACHE).execute(&mut **tx).await?;
        sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'observed'")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// Each row replaces the stored value for its application and node.
async fn import_custom_values(
    tx: &mut sqlx::Transaction<'_, Db>,
    rows: &tally_core::import::Rows<tally_core::import::CustomValueRow>,
    ids: [&crate::import::Ids; 2],
) -> Result<()> {
    let [apps, nodes] = ids;
    for (_, r) in rows {
        let app = crate::import::resolve(apps, &r.application, "application")?;
        let node = match r.org_node.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => Some(crate::import::resolve(nodes, n, "org node")?),
            None => None,
        };
        sqlx::query(
            "DELETE FROM custom_values
             WHERE application_id = $1 AND org_node IS NOT DISTINCT FROM $2",
        )
        .bind(app)
        .bind(node)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO custom_values (application_id, org_node, quantity)
             VALUES ($1, $2, $3)",
        )
        .bind(app)
        .bind(node)
        .bind(r.quantity)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn import_licenses(
    tx: &mut sqlx::Transaction<'_, Db>,
    rows: &tally_core::import::Rows<tally_core::import::LicenseRow>,
    ids: [&crate::import::Ids; 4],
    at: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let [apps, nodes, devices, users] = ids;
    let mut created = Vec::with_capacity(rows.len());
    for (_, r) in rows {
        let target = match r.assigned_to.as_deref().filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(match r.assignment_type {
                tally_core::AssignmentType::Computer => {
                    crate::import::resolve(devices, t, "computer")?
                }
                tally_core::AssignmentType::User => crate::import::resolve(users, t, "user")?,
                _ => crate::import::resolve(nodes, t, "org node")?,
            }),
        };
        let id = sqlx::query(
            "INSERT INTO licenses (application_id, metric, quantity, assignment_type,
                 assigned_to, purchase_date, valid_from, valid_until, maintenance_until,
                 unit_cost_minor, currency, vendor, order_reference, notes, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             RETURNING id",
        )
        .bind(crate::import::resolve(apps, &r.application, "application")?)
        .bind(r.metric.as_str())
        .bind(r.quantity)
        .bind(r.assignment_type.as_str())
        .bind(target)
        .bind(r.purchase_date)
        .bind(r.valid_from)
        .bind(r.valid_until)
        .bind(r.maintenance_until)
        .bind(
            r.unit_cost
                .as_deref()
                .and_then(tally_core::import::parse_cost),
        )
        .bind(&r.currency)
        .bind(&r.vendor)
        .bind(&r.order_reference)
        .bind(&r.notes)
        .bind(to_micros(at))
        .fetch_one(&mut **tx)
        .await?;
        created.push(sqlx::Row::try_get(&id, 0)?);
    }
    Ok(created)
}

/// The page cache of the connection that imports, on SQLite: 256 MB (negative: KiB).
const IMPORT_CACHE: &str = "PRAGMA cache_size = -262144";

/// The page cache while [`SetAside::put_back`] builds indexes again: 64 MB.
const INDEX_BUILD_CACHE: &str = "PRAGMA cache_size = -65536";

#[async_trait]
impl crate::Importing for DbStore {
    async fn import_known(&self) -> Result<tally_core::import::Known> {
        let names = |sql: &'static str| {
            let pool = &self.pool;
            async move {
                let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(pool).await?;
                Ok::<_, sqlx::Error>(rows.into_iter().map(|(n,)| n).collect())
            }
        };
        let apps: Vec<(String, String)> =
            sqlx::query_as("SELECT name, metric FROM applications WHERE removed_at IS NULL")
                .fetch_all(&self.pool)
                .await?;
        let currencies: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT a.name, l.currency FROM licenses l
                 JOIN applications a ON a.id = l.application_id
             WHERE l.removed_at IS NULL AND l.currency IS NOT NULL AND l.currency <> ''",
        )
        .fetch_all(&self.pool)
        .await?;
        let parents: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.name, p.name FROM org_nodes c JOIN org_nodes p ON p.id = c.parent",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut license_currencies = std::collections::HashMap::<_, Vec<_>>::new();
        for (app, currency) in currencies {
            license_currencies.entry(app).or_default().push(currency);
        }
        Ok(tally_core::import::Known {
            org_nodes: names("SELECT name FROM org_nodes").await?,
            host_names: names("SELECT DISTINCT host_name FROM devices").await?,
            accounts: names("SELECT account FROM users").await?,
            rules: names("SELECT name FROM metering_rules").await?,
            license_currencies,
            org_parents: parents.into_iter().collect(),
            applications: apps
                .into_iter()
                .filter_map(|(n, m)| Some((n, tally_core::Metric::parse(&m)?)))
                .collect(),
        })
    }

    async fn import(
        &self,
        batch: &tally_core::import::Batch,
        site: &tally_core::SiteCode,
        at: DateTime<Utc>,
        progress: crate::Progress<'_>,
        audit: crate::AuditOf<'_, tally_core::import::ImportOutcome>,
    ) -> Result<tally_core::import::ImportOutcome> {
        let mut conn = self.pool.acquire().await?;
        let bulk = Bulk::of(&mut conn, batch).await?;
        if super::NAME == "sqlite" {
            // An import writes millions of rows into tables and indexes far larger than
            // SQLite's default page cache (2 MB): pages were spilled to the WAL mid-transaction
            // and read back, and each statement's journal went through a temporary file.
            // The connection is closed afterwards rather than returned to the pool with them.
            conn.close_on_drop();
            // An index set aside is built again by sorting every stored row: in temporary
            // files (SQLite's default), or the sort of 10,000,000 sessions held 1.8 GB.
            // The setting cannot change once the transaction has written.
            let temp_store = match bulk.any() {
                true => "PRAGMA temp_store = FILE",
                false => "PRAGMA temp_store = MEMORY",
            };
            for pragma in [IMPORT_CACHE, temp_store] {
                sqlx::query(pragma).execute(&mut *conn).await?;
            }
        }
        // Takes the write lock at the start: the import reads names before it writes,
        // and on SQLite a read transaction that later writes fails if another
        // connection wrote in between.
        let mut tx = sqlx::Connection::begin_with(&mut *conn, super::BEGIN_WRITE).await?;
        let outcome = import_tx(&mut tx, batch, (site, at), progress, bulk).await?;
        super::audit::commit_of(tx, audit, &outcome).await?;
        Ok(outcome)
    }
}

/// The whole of an import inside the caller's transaction (which it commits with its own
/// audit entry): [`crate::Importing::import`], and a license certificate's application and
/// license. `bulk` says which tables are loaded with their indexes and triggers set aside.
pub(super) async fn import_tx(
    tx: &mut sqlx::Transaction<'_, Db>,
    batch: &tally_core::import::Batch,
    (site, at): (&tally_core::SiteCode, DateTime<Utc>),
    progress: crate::Progress<'_>,
    bulk: Bulk,
) -> Result<tally_core::import::ImportOutcome> {
    let mut done = 0;
    let nodes = import_org_nodes(tx, &batch.org_nodes).await?;
    let devices = import_devices(tx, &batch.devices, &nodes, site, at).await?;
    let users = import_users(tx, &batch.users, &nodes, at).await?;
    let apps = import_applications(tx, &batch.applications, at).await?;
    import_indications(tx, batch).await?;
    done += (batch.org_nodes.len()
        + batch.devices.len()
        + batch.users.len()
        + batch.applications.len()) as u64;
    progress(done);
    let installations = import_installations(
        tx,
        &batch.installations,
        &devices,
        progress,
        (&mut done, bulk.installations),
    )
    .await?;
    import_sessions(
        tx,
        &batch.sessions,
        (&apps, &devices, &users),
        progress,
        (&mut done, bulk.sessions),
    )
    .await?;
    let license_ids =
        import_licenses(tx, &batch.licenses, [&apps, &nodes, &devices, &users], at).await?;
    import_custom_values(tx, &batch.custom_values, [&apps, &nodes]).await?;
    // An import is a person's change: kept positions follow it at once, whatever it wrote
    // (installations and sessions alone only move the `observed` generation).
    sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'positions'")
        .execute(&mut **tx)
        .await?;
    let application_ids = (batch.applications.iter())
        .map(|(_, a)| crate::import::resolve(&apps, &a.name, "application"))
        .collect::<Result<_>>()?;
    let outcome = tally_core::import::ImportOutcome {
        org_nodes: batch.org_nodes.len() as u64,
        devices: batch.devices.len() as u64,
        users: batch.users.len() as u64,
        applications: batch.applications.len() as u64,
        installations,
        sessions: batch.sessions.len() as u64,
        licenses: batch.licenses.len() as u64,
        custom_values: batch.custom_values.len() as u64,
        license_ids,
        application_ids,
    };
    progress(done + (batch.licenses.len() + batch.custom_values.len()) as u64);
    Ok(outcome)
}

/// The system-metering report's indications, where a row gives them: a device's management
/// type, a user's "cannot change password".
async fn import_indications(
    tx: &mut sqlx::Transaction<'_, Db>,
    batch: &tally_core::import::Batch,
) -> Result<()> {
    for (_, r) in &batch.devices {
        if let Some(t) = &r.management_type {
            sqlx::query("UPDATE devices SET management_type = $1 WHERE host_name = $2")
                .bind(t)
                .bind(&r.host_name)
                .execute(&mut **tx)
                .await?;
        }
    }
    for (_, r) in &batch.users {
        if let Some(flag) = r.cannot_change_password {
            sqlx::query("UPDATE users SET cannot_change_password = $1 WHERE account = $2")
                .bind(flag)
                .bind(&r.account)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}
