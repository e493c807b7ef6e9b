//! Raw usage records.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::{to_micros, NewUsageRecord, UsageRecord};

use super::{Db, DbStore};
use crate::rows;
use crate::Result;

/// A `usage_records` row as tally-core's `UsageRecord`, read column by column: the record's
/// fields are declared once, in tally-core, and this is the one place a row becomes one.
struct UsageColumns(UsageRecord);

impl<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> for UsageColumns {
    fn from_row(row: &'r <Db as sqlx::Database>::Row) -> sqlx::Result<Self> {
        use sqlx::Row;
        let record = NewUsageRecord {
            meter_data_id: row.try_get("meter_data_id")?,
            device_id: row.try_get("device_id")?,
            file_id: row.try_get("file_id")?,
            user_id: row.try_get("user_id")?,
            start_time: row.try_get("start_time")?,
            start_time_offset: row.try_get("start_time_offset")?,
            end_time: row.try_get("end_time")?,
            end_time_offset: row.try_get("end_time_offset")?,
            started: row.try_get("started")?,
            still_running: row.try_get("still_running")?,
            start_not_captured: row.try_get("start_not_captured")?,
            end_not_captured: row.try_get("end_not_captured")?,
            in_ts_session: row.try_get("in_ts_session")?,
        };
        Ok(Self(UsageRecord {
            id: row.try_get("id")?,
            record,
            time_serial: row.try_get("time_serial")?,
            released: row.try_get("released")?,
        }))
    }
}

/// The records of the rows a query read.
fn records(rows: Vec<UsageColumns>) -> Vec<UsageRecord> {
    rows.into_iter().map(|r| r.0).collect()
}

/// The records `filter` selects, a row each: how PostgreSQL (binary rows) reads them.
#[allow(dead_code)] // SQLite reads them as text pages (sqlite/usage_text.rs)
pub(crate) async fn usage_rows(
    store: &DbStore,
    filter: &crate::usage::UsageFilter,
) -> Result<Vec<UsageRecord>> {
    use crate::usage::UsageFilter;
    let query = match *filter {
        UsageFilter::Serial {
            lowest,
            upto,
            after,
            limit,
        } => sqlx::query_as::<_, UsageColumns>(
            "SELECT * FROM usage_records
             WHERE time_serial >= $1 AND time_serial <= $2 AND (time_serial, id) > ($3, $4)
             ORDER BY time_serial, id LIMIT $5",
        )
        .bind(lowest.max(after.0))
        .bind(upto)
        .bind(after.0)
        .bind(after.1)
        .bind(limit),
        UsageFilter::Overlapping {
            from,
            to,
            latest_end,
        } => sqlx::query_as::<_, UsageColumns>(
            "SELECT * FROM usage_records
             WHERE end_time >= $1 AND end_time <= $3 AND start_time < $2",
        )
        .bind(to_micros(from))
        .bind(to_micros(to))
        .bind(to_micros(latest_end)),
    };
    Ok(records(query.fetch_all(&store.pool).await?))
}

/// The latest end a record overlapping a window ending at `to` can have: `to` plus the longest
/// period stored, so the end-time index reads only the records near the window.
async fn latest_end(store: &DbStore, to: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let longest: i64 =
        sqlx::query_scalar("SELECT value FROM counters WHERE name = 'longest_period_ms'")
            .fetch_one(&store.pool)
            .await?;
    // The counter keeps whole milliseconds, rounded down: one more covers the rest.
    Ok(to + chrono::Duration::milliseconds(longest + 1))
}

/// Inserts records under `time_serial` inside the caller's transaction.
async fn insert_records(
    tx: &mut sqlx::Transaction<'_, Db>,
    records: &[tally_core::NewUsageRecord],
    time_serial: i64,
) -> Result<tally_core::usage::InsertOutcome> {
    // The longest period stored bounds the search for records overlapping a time.
    let longest = records
        .iter()
        .map(|r| (r.end_time - r.start_time).num_milliseconds())
        .max()
        .unwrap_or(0);
    sqlx::query("UPDATE counters SET value = $1 WHERE name = 'longest_period_ms' AND value < $1")
        .bind(longest)
        .execute(&mut **tx)
        .await?;
    let mut stored = 0;
    for chunk in records.chunks(rows::INSERT_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO usage_records (device_id, meter_data_id, file_id, user_id,
                 start_time, start_time_offset, end_time, end_time_offset, started,
                 still_running, start_not_captured, end_not_captured, in_ts_session,
                 time_serial) ",
        );
        insert.push_values(chunk, |mut row, r| {
            row.push_bind(r.device_id)
                .push_bind(&r.meter_data_id)
                .push_bind(r.file_id)
                .push_bind(r.user_id)
                .push_bind(to_micros(r.start_time))
                .push_bind(r.start_time_offset)
                .push_bind(to_micros(r.end_time))
                .push_bind(r.end_time_offset)
                .push_bind(r.started)
                .push_bind(r.still_running)
                .push_bind(r.start_not_captured)
                .push_bind(r.end_not_captured)
                .push_bind(r.in_ts_session)
                .push_bind(time_serial);
        });
        insert.push(" ON CONFLICT DO NOTHING");
        stored += insert.build().execute(&mut **tx).await?.rows_affected();
    }
    Ok(tally_core::usage::InsertOutcome {
        stored,
        duplicates: records.len() as u64 - stored,
        time_serial,
    })
}

/// Claims `batch` for its device and, the first time, inserts its records under
/// `time_serial` and remembers what they came to; `None` for a batch received before.
async fn claim_and_insert(
    tx: &mut sqlx::Transaction<'_, Db>,
    batch: &crate::UsageBatchRows,
    time_serial: i64,
) -> Result<Option<tally_core::usage::BatchOutcome>> {
    let claimed = sqlx::query(
        "INSERT INTO usage_batches (device_id, batch_id, stored, duplicates, received_at)
         VALUES ($1, $2, 0, 0, $3) ON CONFLICT DO NOTHING",
    )
    .bind(batch.device_id)
    .bind(&batch.batch_id)
    .bind(to_micros(batch.at))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(None);
    }
    let outcome = insert_records(tx, &batch.records, time_serial).await?;
    sqlx::query(
        "UPDATE usage_batches SET stored = $1, duplicates = $2
         WHERE device_id = $3 AND batch_id = $4",
    )
    .bind(outcome.stored as i64)
    .bind(outcome.duplicates as i64)
    .bind(batch.device_id)
    .bind(&batch.batch_id)
    .execute(&mut **tx)
    .await?;
    Ok(Some(tally_core::usage::BatchOutcome {
        stored: outcome.stored,
        duplicates: outcome.duplicates,
        replayed: false,
    }))
}

/// The answer to a replayed batch: what its first receipt stored.
async fn replayed(
    store: &DbStore,
    batch: &crate::UsageBatchRows,
) -> Result<tally_core::usage::BatchOutcome> {
    let (stored, duplicates): (i64, i64) = sqlx::query_as(
        "SELECT stored, duplicates FROM usage_batches WHERE device_id = $1 AND batch_id = $2",
    )
    .bind(batch.device_id)
    .bind(&batch.batch_id)
    .fetch_one(&store.pool)
    .await?;
    Ok(tally_core::usage::BatchOutcome {
        stored: stored as u64,
        duplicates: duplicates as u64,
        replayed: true,
    })
}

#[async_trait]
impl crate::UsageStore for DbStore {
    async fn insert_usage(
        &self,
        records: &[tally_core::NewUsageRecord],
    ) -> Result<tally_core::usage::InsertOutcome> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let time_serial = super::take_time_serial(&mut tx).await?;
        let outcome = insert_records(&mut tx, records, time_serial).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn usage_records(
        &self,
        query: &crate::UsageQuery,
    ) -> Result<Vec<tally_core::UsageRecord>> {
        let mut sql = sqlx::QueryBuilder::<Db>::new("SELECT * FROM usage_records WHERE id > ");
        sql.push_bind(query.page.after);
        if let Some(device) = query.device_id {
            sql.push(" AND device_id = ").push_bind(device);
        }
        if let Some(user) = query.user_id {
            sql.push(" AND user_id = ").push_bind(user);
        }
        if let Some(since) = query.since {
            sql.push(" AND end_time >= ").push_bind(to_micros(since));
        }
        super::push_sites(&mut sql, "device_id", query.sites.as_deref());
        if let Some(files) = &query.file_ids {
            if files.is_empty() {
                return Ok(Vec::new());
            }
            sql.push(" AND file_id IN (");
            let mut list = sql.separated(", ");
            for f in files {
                list.push_bind(*f);
            }
            list.push_unseparated(")");
        }
        sql.push(" ORDER BY id LIMIT ").push_bind(query.page.limit);
        Ok(sql
            .build_query_as::<UsageColumns>()
            .fetch_all(&self.pool)
            .await
            .map(records)?)
    }

    async fn insert_usage_batches(
        &self,
        batches: &[crate::UsageBatchRows],
    ) -> Result<Vec<tally_core::usage::BatchOutcome>> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let time_serial = super::take_time_serial(&mut tx).await?;
        let mut firsts = Vec::with_capacity(batches.len());
        for batch in batches {
            firsts.push(claim_and_insert(&mut tx, batch, time_serial).await?);
        }
        tx.commit().await?;
        let mut outcomes = Vec::with_capacity(batches.len());
        for (batch, first) in batches.iter().zip(firsts) {
            outcomes.push(match first {
                Some(outcome) => outcome,
                None => replayed(self, batch).await?,
            });
        }
        Ok(outcomes)
    }

    async fn max_time_serial(&self) -> Result<i64> {
        super::settled_time_serial(&self.pool).await
    }

    async fn newest_time_serial(&self) -> Result<i64> {
        super::newest_time_serial(&self.pool).await
    }

    async fn usage_by_serial(
        &self,
        (after_serial, upto_serial): (i64, i64),
        (page_serial, page_id): (i64, i64),
        limit: i64,
    ) -> Result<Vec<tally_core::UsageRecord>> {
        // One lower bound, so the planner starts the index range at the page, not at
        // the watermark (which would make reading every record quadratic).
        let filter = crate::usage::UsageFilter::Serial {
            lowest: after_serial + 1,
            upto: upto_serial,
            after: (page_serial, page_id),
            limit,
        };
        self.read_usage(&filter).await
    }

    async fn usage_overlapping(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<tally_core::UsageRecord>> {
        let filter = crate::usage::UsageFilter::Overlapping {
            from,
            to,
            latest_end: latest_end(self, to).await?,
        };
        self.read_usage(&filter).await
    }

    async fn usage_overlapping_in(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        sites: &[tally_core::SiteCode],
    ) -> Result<Vec<tally_core::UsageRecord>> {
        let latest_end = latest_end(self, to).await?;
        let mut sql =
            sqlx::QueryBuilder::<Db>::new("SELECT * FROM usage_records WHERE end_time >= ");
        sql.push_bind(to_micros(from))
            .push(" AND end_time <= ")
            .push_bind(to_micros(latest_end))
            .push(" AND start_time < ")
            .push_bind(to_micros(to));
        super::push_sites(&mut sql, "device_id", Some(sites));
        let rows = sql.build_query_as::<UsageColumns>().fetch_all(&self.pool);
        Ok(records(rows.await?))
    }

    async fn usage_hour_spans(
        &self,
        (after_serial, upto_serial): (i64, i64),
    ) -> Result<Option<Vec<(DateTime<Utc>, DateTime<Utc>)>>> {
        if super::NAME != "sqlite" {
            let sql = "SELECT DISTINCT
                     date_trunc('hour', start_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                     date_trunc('hour', end_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                 FROM usage_records
                 WHERE time_serial > $1 AND time_serial <= $2 AND start_time <= end_time";
            let spans = sqlx::query_as(sql)
                .bind(after_serial)
                .bind(upto_serial)
                .fetch_all(&self.pool)
                .await?;
            return Ok(Some(spans));
        }
        // SQLite keeps times as RFC 3339 text in UTC (Tally binds every time as UTC): its first
        // 13 characters are the hour. A text that does not read as one (a time stored some
        // other way) leaves the caller to read the records.
        let sql = "SELECT DISTINCT substr(start_time, 1, 13), substr(end_time, 1, 13)
             FROM usage_records
             WHERE time_serial > $1 AND time_serial <= $2 AND start_time <= end_time";
        let texts: Vec<(String, String)> = sqlx::query_as(sql)
            .bind(after_serial)
            .bind(upto_serial)
            .fetch_all(&self.pool)
            .await?;
        let hour = |text: &str| {
            chrono::NaiveDateTime::parse_from_str(&format!("{text}:00:00"), "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|t| t.and_utc())
        };
        Ok(texts
            .iter()
            .map(|(start, end)| Some((hour(start)?, hour(end)?)))
            .collect())
    }

    async fn usage_pending(&self, watermark: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM usage_records WHERE time_serial > $1")
                .bind(watermark)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn delete_aged_usage(&self, before: DateTime<Utc>, summarised: i64) -> Result<u64> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let before = to_micros(before);
        sqlx::query(
            "UPDATE usage_records SET released = TRUE
             WHERE end_time < $1 AND time_serial <= $2 AND NOT released",
        )
        .bind(before)
        .bind(summarised)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM usage_records WHERE released AND end_time < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected())
    }
}
