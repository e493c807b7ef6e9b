//! Licensing reads and the changes made one at a time.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tally_core::to_micros;

use super::{Db, DbStore};
use crate::rows;
use crate::Result;

/// The id of the org node, computer or user a license row names (by its assignment type), or
/// none for a license on the whole organisation. The caller has checked the name exists.
async fn license_target(
    tx: &mut sqlx::Transaction<'_, Db>,
    row: &tally_core::import::LicenseRow,
) -> Result<Option<i64>> {
    let Some(name) = row.assigned_to.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let sql = match row.assignment_type {
        tally_core::AssignmentType::Computer => "SELECT MIN(id) FROM devices WHERE host_name = $1",
        tally_core::AssignmentType::User => "SELECT MIN(id) FROM users WHERE account = $1",
        _ => "SELECT MIN(id) FROM org_nodes WHERE name = $1",
    };
    let id: Option<i64> = sqlx::query_scalar(sql)
        .bind(name)
        .fetch_one(&mut **tx)
        .await?;
    id.map(Some).ok_or_else(|| {
        crate::StoreError::Conflict(format!(
            "no {} named {name:?}",
            row.assignment_type.as_str()
        ))
    })
}

impl DbStore {
    /// Applications whose row matches `filter` (with `$1` bound to `at` when given), with their
    /// recognition rules, by name.
    async fn applications_where(
        &self,
        filter: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<tally_core::AppRecord>> {
        let rules: Vec<rows::RecognitionColumns> = sqlx::query_as(
            "SELECT application_id, software, publisher, version, metering_rule
             FROM recognition_rules ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_app: std::collections::HashMap<i64, Vec<tally_core::Recognition>> =
            Default::default();
        for r in rules {
            let r = tally_core::Recognition::from(r);
            by_app.entry(r.application_id).or_default().push(r);
        }
        let sql = format!(
            "SELECT id, name, publisher, metric, period_days, total_user_metric
             FROM applications WHERE {filter} ORDER BY name"
        );
        let mut query = sqlx::query_as::<_, rows::ApplicationColumns>(&sql);
        if let Some(at) = at {
            query = query.bind(to_micros(at));
        }
        let apps = query.fetch_all(&self.pool).await?;
        apps.into_iter()
            .map(|a| a.into_record(&mut by_app))
            .collect()
    }

    /// Licenses whose row matches `filter` (with `$1` bound to `at` when given), by id.
    async fn licenses_where(
        &self,
        filter: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<Vec<tally_core::License>> {
        let sql = format!("SELECT * FROM licenses WHERE {filter} ORDER BY id");
        let mut query = sqlx::query_as::<_, rows::LicenseColumns>(&sql);
        if let Some(at) = at {
            query = query.bind(to_micros(at));
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

#[async_trait]
impl crate::Licensing for DbStore {
    async fn org_nodes(&self) -> Result<Vec<tally_core::OrgNode>> {
        let rows: Vec<(i64, String, Option<i64>)> =
            sqlx::query_as("SELECT id, name, parent FROM org_nodes ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, parent)| tally_core::OrgNode { id, name, parent })
            .collect())
    }

    async fn applications(&self) -> Result<Vec<tally_core::AppRecord>> {
        self.applications_where("removed_at IS NULL", None).await
    }

    async fn applications_on(&self, day: NaiveDate) -> Result<Vec<tally_core::AppRecord>> {
        let end = crate::licensing::end_of(day);
        self.applications_where("(removed_at IS NULL OR removed_at >= $1)", Some(end))
            .await
    }

    async fn licenses(&self) -> Result<Vec<tally_core::License>> {
        self.licenses_where("removed_at IS NULL", None).await
    }

    async fn licenses_on(&self, day: NaiveDate) -> Result<Vec<tally_core::License>> {
        let end = crate::licensing::end_of(day);
        self.licenses_where("(removed_at IS NULL OR removed_at >= $1)", Some(end))
            .await
    }

    async fn license_assignees(&self) -> Result<std::collections::HashMap<i64, String>> {
        let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT l.id, CASE l.assignment_type WHEN 'computer' THEN d.host_name
                     WHEN 'user' THEN u.account ELSE o.name END
             FROM licenses l LEFT JOIN devices d ON d.id = l.assigned_to
                 LEFT JOIN users u ON u.id = l.assigned_to
                 LEFT JOIN org_nodes o ON o.id = l.assigned_to
             WHERE l.removed_at IS NULL AND l.assigned_to IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, name)| Some((id, name?)))
            .collect())
    }

    async fn update_license(
        &self,
        id: i64,
        row: &tally_core::import::LicenseRow,
        audit: crate::AuditNote<'_>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let target = license_target(&mut tx, row).await?;
        let changed = sqlx::query(
            "UPDATE licenses SET metric = $1, quantity = $2, assignment_type = $3,
                 assigned_to = $4, purchase_date = $5, valid_from = $6, valid_until = $7,
                 maintenance_until = $8, unit_cost_minor = $9, currency = $10, vendor = $11,
                 order_reference = $12, notes = $13
             WHERE id = $14 AND removed_at IS NULL",
        )
        .bind(row.metric.as_str())
        .bind(row.quantity)
        .bind(row.assignment_type.as_str())
        .bind(target)
        .bind(row.purchase_date)
        .bind(row.valid_from)
        .bind(row.valid_until)
        .bind(row.maintenance_until)
        .bind(
            row.unit_cost
                .as_deref()
                .and_then(tally_core::import::parse_cost),
        )
        .bind(&row.currency)
        .bind(&row.vendor)
        .bind(&row.order_reference)
        .bind(&row.notes)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            return Ok(false);
        }
        super::audit::commit_with(tx, audit).await?;
        Ok(true)
    }

    async fn compliance_devices(&self) -> Result<Vec<tally_core::Device>> {
        super::all_rows(
            self,
            "SELECT * FROM devices",
            rows::DeviceColumns::into_device,
        )
        .await?
    }

    async fn compliance_users(&self) -> Result<Vec<tally_core::User>> {
        super::all_rows(self, "SELECT * FROM users", rows::UserColumns::into_user).await?
    }

    async fn sessions(
        &self,
        application_id: i64,
        period: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Vec<tally_core::sessions::UsageSession>> {
        self.application_sessions(application_id, period).await
    }

    async fn software_titles(&self, on: DateTime<Utc>) -> Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(&format!(
            "SELECT DISTINCT name, publisher, version FROM installed_software WHERE {}",
            crate::licensing::INSTALLED_ON
        ))
        .bind(to_micros(on))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn devices_with(&self, title: (&str, &str, &str), on: DateTime<Utc>) -> Result<Vec<i64>> {
        self.title_devices(title, on).await
    }

    async fn status_changes(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<tally_core::history::StatusChange>> {
        let query = sqlx::query_as::<_, rows::StatusChangeColumns>(
            "SELECT subject, subject_id, old_status FROM status_changes
             WHERE changed_at >= $1 ORDER BY changed_at",
        )
        .bind(to_micros(since));
        super::fetch_into(self, query).await
    }

    async fn custom_values(&self) -> Result<Vec<(i64, Option<i64>, i64)>> {
        Ok(sqlx::query_as(
            "SELECT application_id, org_node, quantity FROM custom_values ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn generations(&self) -> Result<crate::licensing::Generations> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT name, value FROM counters WHERE name IN ('positions', 'observed', 'evidence')",
        )
        .fetch_all(&self.pool)
        .await?;
        let of = |name: &str| rows.iter().find(|r| r.0 == name).map_or(0, |r| r.1);
        Ok(crate::licensing::Generations {
            positions: of("positions"),
            observed: of("observed"),
            evidence: of("evidence"),
        })
    }

    async fn last_sessions(&self) -> Result<Vec<(i64, i64, DateTime<Utc>)>> {
        Ok(sqlx::query_as(
            "SELECT application_id, device_id, MAX(end_time) FROM usage_sessions
             GROUP BY application_id, device_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn put_snapshots(
        &self,
        day: chrono::NaiveDate,
        rows: &[tally_core::history::Snapshot],
    ) -> Result<()> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        sqlx::query("DELETE FROM compliance_snapshots WHERE day = $1")
            .bind(day)
            .execute(&mut *tx)
            .await?;
        for chunk in rows.chunks(crate::import::CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO compliance_snapshots (day, application_id, required, owned,
                     covered, shortfall, surplus, status) ",
            );
            insert.push_values(chunk, |mut b, s| {
                b.push_bind(day)
                    .push_bind(s.application_id)
                    .push_bind(s.required)
                    .push_bind(s.owned)
                    .push_bind(s.covered)
                    .push_bind(s.shortfall)
                    .push_bind(s.surplus)
                    .push_bind(&s.status);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn snapshots(
        &self,
        application_id: Option<i64>,
        from: chrono::NaiveDate,
    ) -> Result<Vec<tally_core::history::Snapshot>> {
        let query = sqlx::query_as::<_, rows::SnapshotColumns>(
            "SELECT * FROM compliance_snapshots
             WHERE day >= $1 AND ($2 IS NULL OR application_id = $2)
             ORDER BY day, application_id",
        )
        .bind(from)
        .bind(application_id);
        super::fetch_into(self, query).await
    }

    async fn delete_application(
        &self,
        id: i64,
        at: DateTime<Utc>,
        audit: crate::AuditNote<'_>,
    ) -> Result<bool> {
        super::stamp_by_id(self, ("applications", "removed_at"), (id, at), audit).await
    }

    async fn put_run_sessions(&self, sessions: &[tally_core::sessions::RunSession]) -> Result<u64> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        for chunk in sessions.chunks(crate::import::CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO usage_sessions (application_id, meter_data_id, device_id,
                     user_id, start_time, end_time) ",
            );
            insert.push_values(chunk, |mut b, s| {
                b.push_bind(s.application_id)
                    .push_bind(&s.meter_data_id)
                    .push_bind(s.device_id)
                    .push_bind(s.user_id)
                    .push_bind(to_micros(s.start))
                    .push_bind(to_micros(s.end));
            });
            insert.push(
                " ON CONFLICT (application_id, meter_data_id) WHERE meter_data_id IS NOT NULL
                 DO UPDATE SET
                     start_time = CASE WHEN excluded.start_time < usage_sessions.start_time
                         THEN excluded.start_time ELSE usage_sessions.start_time END,
                     end_time = CASE WHEN excluded.end_time > usage_sessions.end_time
                         THEN excluded.end_time ELSE usage_sessions.end_time END",
            );
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(sessions.len() as u64)
    }

    async fn org_rules(&self) -> Result<Vec<tally_core::org::OrgRule>> {
        let rows: Vec<(i64, i64, Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT id, org_node, site, host_name, account FROM org_rules ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, org_node, site, host_name, account)| tally_core::org::OrgRule {
                    id,
                    org_node,
                    site,
                    host_name,
                    account,
                },
            )
            .collect())
    }

    async fn add_org_rule(
        &self,
        rule: &tally_core::org::OrgRule,
        audit: crate::AuditOf<'_, tally_core::org::OrgRule>,
    ) -> Result<tally_core::org::OrgRule> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO org_rules (org_node, site, host_name, account)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(rule.org_node)
        .bind(&rule.site)
        .bind(&rule.host_name)
        .bind(&rule.account)
        .fetch_one(&mut *tx)
        .await?;
        let added = tally_core::org::OrgRule { id, ..rule.clone() };
        super::audit::commit_of(tx, audit, &added).await?;
        Ok(added)
    }

    async fn delete_org_rule(&self, id: i64, audit: crate::AuditNote<'_>) -> Result<bool> {
        super::delete_by_id(self, "org_rules", id, audit).await
    }

    async fn set_org_node(
        &self,
        target: tally_core::org::OrgTarget,
        node: Option<i64>,
        audit: crate::AuditNote<'_>,
    ) -> Result<bool> {
        let (sql, id) = match target {
            tally_core::org::OrgTarget::Device(id) => {
                ("UPDATE devices SET org_node = $1 WHERE id = $2", id)
            }
            tally_core::org::OrgTarget::User(id) => {
                ("UPDATE users SET org_node = $1 WHERE id = $2", id)
            }
        };
        super::change_one(self, sqlx::query(sql).bind(node).bind(id), audit).await
    }

    async fn delete_license(
        &self,
        id: i64,
        at: DateTime<Utc>,
        audit: crate::AuditNote<'_>,
    ) -> Result<bool> {
        super::stamp_by_id(self, ("licenses", "removed_at"), (id, at), audit).await
    }
}
