//! Usage summaries and maintenance tasks.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::to_micros;

use super::{Db, DbStore};
use crate::rows;
use crate::Result;

/// Replaces the hourly rows of `keys` with `rows`, in `tx`.
async fn replace_hours(
    tx: &mut sqlx::Transaction<'_, Db>,
    keys: &[(i64, DateTime<Utc>)],
    rows: &[tally_core::summary::FileUsageHour],
) -> Result<()> {
    for chunk in keys.chunks(rows::INSERT_CHUNK) {
        let mut delete = sqlx::QueryBuilder::<Db>::new(
            "DELETE FROM file_usage_hourly WHERE (rule_id, hour) IN (",
        );
        let mut list = delete.separated(", ");
        for (rule, hour) in chunk {
            list.push("(")
                .push_bind_unseparated(*rule)
                .push_unseparated(", ")
                .push_bind_unseparated(to_micros(*hour))
                .push_unseparated(")");
        }
        delete.push(")");
        delete.build().execute(&mut **tx).await?;
    }
    for chunk in rows.chunks(rows::INSERT_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO file_usage_hourly (rule_id, hour, distinct_users, distinct_devices,
             distinct_ts_users, usage_ms, peak_concurrent_runs, peak_concurrent_users) ",
        );
        insert.push_values(chunk, |mut row, h| {
            row.push_bind(h.rule_id)
                .push_bind(to_micros(h.hour))
                .push_bind(h.distinct_users)
                .push_bind(h.distinct_devices)
                .push_bind(h.distinct_ts_users)
                .push_bind(h.usage_ms)
                .push_bind(h.peak_concurrent_runs)
                .push_bind(h.peak_concurrent_users);
        });
        insert.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Moves `task`'s watermark from `from` to `to` in `tx`; a conflict when it is no longer
/// `from` (another replica summarised meanwhile), so the caller's rows are not stored twice.
async fn move_watermark(
    tx: &mut sqlx::Transaction<'_, Db>,
    task: tally_core::tasks::Task,
    from: i64,
    to: i64,
) -> Result<()> {
    let defaults = task.defaults();
    sqlx::query(
        "INSERT INTO maintenance_tasks (name, enabled, every_secs, watermark)
         VALUES ($1, $2, $3, 0) ON CONFLICT (name) DO NOTHING",
    )
    .bind(task.name())
    .bind(defaults.enabled)
    .bind(defaults.every_secs)
    .execute(&mut **tx)
    .await?;
    let moved = sqlx::query(
        "UPDATE maintenance_tasks SET watermark = $1 WHERE name = $2 AND watermark = $3",
    )
    .bind(to)
    .bind(task.name())
    .bind(from)
    .execute(&mut **tx)
    .await?;
    if moved.rows_affected() != 1 {
        return Err(crate::StoreError::Conflict(format!(
            "{} moved on meanwhile (another server ran it); run the task again",
            task.name()
        )));
    }
    Ok(())
}

#[async_trait]
impl crate::SummaryStore for DbStore {
    async fn replace_file_usage_hours(
        &self,
        keys: &[(i64, DateTime<Utc>)],
        rows: &[tally_core::summary::FileUsageHour],
    ) -> Result<()> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        replace_hours(&mut tx, keys, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn replace_file_usage_hours_moving(
        &self,
        keys: &[(i64, DateTime<Utc>)],
        rows: &[tally_core::summary::FileUsageHour],
        (from, to): (i64, i64),
    ) -> Result<()> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let task = tally_core::tasks::Task::SummarizeFileUsage;
        move_watermark(&mut tx, task, from, to).await?;
        replace_hours(&mut tx, keys, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn file_usage_hours(
        &self,
        rule_id: Option<i64>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<tally_core::summary::FileUsageHour>> {
        let query = sqlx::query_as::<_, rows::HourColumns>(
            "SELECT * FROM file_usage_hourly
             WHERE hour >= $1 AND hour < $2 AND ($3 IS NULL OR rule_id = $3)
             ORDER BY hour, rule_id",
        )
        .bind(to_micros(from))
        .bind(to_micros(to))
        .bind(rule_id);
        super::fetch_into(self, query).await
    }

    async fn add_monthly_usage(
        &self,
        rows: &[(
            tally_core::summary::MonthKey,
            tally_core::summary::MonthlyUsage,
        )],
        (from, to): (i64, i64),
    ) -> Result<()> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let task = tally_core::tasks::Task::SummarizeMonthlyUsage;
        move_watermark(&mut tx, task, from, to).await?;
        for chunk in rows.chunks(rows::INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO monthly_usage (rule_id, device_id, user_id, month, runs, usage_ms, last_used) ",
            );
            insert.push_values(chunk, |mut row, (k, u)| {
                row.push_bind(k.rule_id)
                    .push_bind(k.device_id)
                    .push_bind(k.user_id)
                    .push_bind(k.month)
                    .push_bind(u.runs)
                    .push_bind(u.usage_ms)
                    .push_bind(to_micros(u.last_used));
            });
            insert.push(
                " ON CONFLICT (rule_id, device_id, user_id, month) DO UPDATE SET
                   runs = monthly_usage.runs + excluded.runs,
                   usage_ms = monthly_usage.usage_ms + excluded.usage_ms,
                   last_used = CASE WHEN excluded.last_used > monthly_usage.last_used
                               THEN excluded.last_used ELSE monthly_usage.last_used END",
            );
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn monthly_usage(
        &self,
        rule_id: Option<i64>,
        (first, last): (i32, i32),
        sites: Option<&[tally_core::SiteCode]>,
    ) -> Result<
        Vec<(
            tally_core::summary::MonthKey,
            tally_core::summary::MonthlyUsage,
        )>,
    > {
        let mut sql = sqlx::QueryBuilder::<Db>::new("SELECT * FROM monthly_usage WHERE month >= ");
        sql.push_bind(first).push(" AND month <= ").push_bind(last);
        if let Some(rule) = rule_id {
            sql.push(" AND rule_id = ").push_bind(rule);
        }
        super::push_sites(&mut sql, "device_id", sites);
        sql.push(" ORDER BY month, rule_id, device_id, user_id");
        super::fetch_into(self, sql.build_query_as::<rows::MonthColumns>()).await
    }

    async fn monthly_usage_of(
        &self,
        of: crate::UsageOf,
        (first, last): (i32, i32),
    ) -> Result<
        Vec<(
            tally_core::summary::MonthKey,
            tally_core::summary::MonthlyUsage,
            crate::MonthNames,
        )>,
    > {
        let (column, id) = match of {
            crate::UsageOf::Device(id) => ("device_id", id),
            crate::UsageOf::User(id) => ("user_id", id),
        };
        let sql = format!(
            "SELECT m.*, r.name AS rule_name, d.host_name, u.account FROM monthly_usage m
             LEFT JOIN metering_rules r ON r.id = m.rule_id
             LEFT JOIN devices d ON d.id = m.device_id
             LEFT JOIN users u ON u.id = m.user_id
             WHERE m.{column} = $1 AND m.month >= $2 AND m.month <= $3
             ORDER BY m.month DESC, r.name, m.rule_id, m.device_id, m.user_id"
        );
        let query = sqlx::query_as::<_, rows::NamedMonthColumns>(&sql)
            .bind(id)
            .bind(first)
            .bind(last);
        super::fetch_into(self, query).await
    }

    async fn delete_aged_summaries(&self, before: DateTime<Utc>, before_month: i32) -> Result<u64> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let hours = sqlx::query("DELETE FROM file_usage_hourly WHERE hour < $1")
            .bind(to_micros(before))
            .execute(&mut *tx)
            .await?;
        let months = sqlx::query("DELETE FROM monthly_usage WHERE month < $1")
            .bind(before_month)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(hours.rows_affected() + months.rows_affected())
    }

    async fn monthly_totals(
        &self,
        (first, last): (i32, i32),
        sites: Option<&[tally_core::SiteCode]>,
    ) -> Result<Vec<tally_core::summary::RuleMonth>> {
        let mut sql = sqlx::QueryBuilder::<Db>::new(
            "SELECT rule_id, month, CAST(SUM(runs) AS BIGINT) AS runs,
                 COUNT(DISTINCT user_id) AS users, COUNT(DISTINCT device_id) AS devices,
                 CAST(SUM(usage_ms) AS BIGINT) AS usage_ms
             FROM monthly_usage WHERE month >= ",
        );
        sql.push_bind(first).push(" AND month <= ").push_bind(last);
        super::push_sites(&mut sql, "device_id", sites);
        sql.push(" GROUP BY rule_id, month ORDER BY month, rule_id");
        super::fetch_into(self, sql.build_query_as::<rows::RuleMonthColumns>()).await
    }

    async fn monthly_usage_by(
        &self,
        by: tally_core::summary::UsageByKind,
        rule_id: i64,
        (first, last): (i32, i32),
        sites: Option<&[tally_core::SiteCode]>,
    ) -> Result<Vec<tally_core::summary::UsageBy>> {
        let (select, group) = match by {
            tally_core::summary::UsageByKind::User => (
                "SELECT m.user_id AS id, u.account AS name,
                 u.full_name AS detail, CAST(SUM(m.runs) AS BIGINT) AS runs,
                 CAST(SUM(m.usage_ms) AS BIGINT) AS usage_ms,
                 COUNT(DISTINCT m.device_id) AS others, MAX(m.last_used) AS last_used
                 FROM monthly_usage m JOIN users u ON u.id = m.user_id WHERE m.rule_id = ",
                " GROUP BY m.user_id, u.account, u.full_name ORDER BY usage_ms DESC, name",
            ),
            tally_core::summary::UsageByKind::Device => (
                "SELECT m.device_id AS id, d.host_name AS name,
                 d.fqdn AS detail, CAST(SUM(m.runs) AS BIGINT) AS runs,
                 CAST(SUM(m.usage_ms) AS BIGINT) AS usage_ms,
                 COUNT(DISTINCT m.user_id) AS others, MAX(m.last_used) AS last_used
                 FROM monthly_usage m JOIN devices d ON d.id = m.device_id WHERE m.rule_id = ",
                " GROUP BY m.device_id, d.host_name, d.fqdn ORDER BY usage_ms DESC, name",
            ),
        };
        let mut sql = sqlx::QueryBuilder::<Db>::new(select);
        sql.push_bind(rule_id)
            .push(" AND m.month >= ")
            .push_bind(first)
            .push(" AND m.month <= ")
            .push_bind(last);
        super::push_sites(&mut sql, "m.device_id", sites);
        sql.push(group);
        super::fetch_into(self, sql.build_query_as::<rows::UsageByColumns>()).await
    }

    async fn tasks(&self) -> Result<Vec<tally_core::tasks::TaskState>> {
        let stored: Vec<rows::TaskColumns> = sqlx::query_as("SELECT * FROM maintenance_tasks")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows::with_defaults(stored))
    }

    async fn put_task(
        &self,
        t: &tally_core::tasks::TaskState,
        part: crate::TaskPart,
        audit: crate::AuditNote<'_>,
    ) -> Result<()> {
        let update = match part {
            crate::TaskPart::Settings => {
                "enabled = excluded.enabled, every_secs = excluded.every_secs,
                 age_days = excluded.age_days"
            }
            crate::TaskPart::Outcome => {
                "last_run_at = excluded.last_run_at,
                 last_duration_ms = excluded.last_duration_ms,
                 last_rows = excluded.last_rows, watermark = excluded.watermark,
                 last_error = excluded.last_error"
            }
        };
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        sqlx::query(&format!(
            "INSERT INTO maintenance_tasks (name, enabled, every_secs, age_days, last_run_at,
                 last_duration_ms, last_rows, watermark, last_error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (name) DO UPDATE SET {update}"
        ))
        .bind(&t.name)
        .bind(t.enabled)
        .bind(t.every_secs)
        .bind(t.age_days)
        .bind(t.last_run_at.map(to_micros))
        .bind(t.last_duration_ms)
        .bind(t.last_rows)
        .bind(t.watermark)
        .bind(&t.last_error)
        .execute(&mut *tx)
        .await?;
        super::audit::commit_with(tx, audit).await
    }

    async fn lock_task(&self, name: &str) -> Result<Option<crate::TaskLock>> {
        self.task_lock(name).await
    }
}
