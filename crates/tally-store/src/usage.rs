//! Raw usage records: stored once per report, read back by id, by `TimeSerial` (for the
//! summarisers) and by time (for the hourly summary), and aged away once summarised.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::usage::{BatchOutcome, InsertOutcome, NewUsageRecord};
use tally_core::UsageRecord;

use crate::{Page, Result};

/// Which usage records to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    pub device_id: Option<i64>,
    pub user_id: Option<i64>,
    pub file_ids: Option<Vec<i64>>,
    /// Only devices whose agents report at one of these sites (a parent narrowing to a
    /// child's subtree).
    pub sites: Option<Vec<tally_core::SiteCode>>,
    pub since: Option<DateTime<Utc>>,
    pub page: Page,
}

/// One agent upload, its ids resolved, as the store writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageBatchRows {
    pub device_id: i64,
    pub batch_id: String,
    pub records: Vec<NewUsageRecord>,
    pub at: DateTime<Utc>,
}

/// Which raw records a summariser reads: the backends answer it each their fastest way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UsageFilter {
    /// Records with `lowest <= time_serial <= upto` after `after` (`(time_serial, id)`), in
    /// that order, at most `limit`.
    Serial {
        lowest: i64,
        upto: i64,
        after: (i64, i64),
        limit: i64,
    },
    /// Records ending in `[from, latest_end]` that start before `to`.
    Overlapping {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        latest_end: DateTime<Utc>,
    },
}

#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Stores records in one transaction under one new `TimeSerial`. A record already stored
    /// (same device, `MeterDataID`, end time) is left untouched and counted as a duplicate.
    async fn insert_usage(&self, records: &[NewUsageRecord]) -> Result<InsertOutcome>;
    async fn usage_records(&self, query: &UsageQuery) -> Result<Vec<UsageRecord>>;

    /// Stores agent uploads in one transaction under one new `TimeSerial` (a group commit),
    /// each once: the first time, its records are inserted and the outcome remembered under
    /// `(device_id, batch_id)`; a replay writes nothing and returns the remembered outcome.
    /// Outcomes are in the order of `batches`.
    async fn insert_usage_batches(&self, batches: &[UsageBatchRows]) -> Result<Vec<BatchOutcome>>;

    /// [`UsageStore::insert_usage_batches`] for one upload.
    async fn insert_usage_batch(
        &self,
        device_id: i64,
        batch_id: &str,
        records: &[NewUsageRecord],
        at: DateTime<Utc>,
    ) -> Result<BatchOutcome> {
        let batch = UsageBatchRows {
            device_id,
            batch_id: batch_id.to_string(),
            records: records.to_vec(),
            at,
        };
        let mut outcomes = self
            .insert_usage_batches(std::slice::from_ref(&batch))
            .await?;
        Ok(outcomes.pop().expect("one outcome per batch"))
    }

    /// The newest `TimeSerial` below which every write has ended: no record with a serial at or
    /// under it can still appear, so a reader that has read up to it may move its watermark
    /// there.
    async fn max_time_serial(&self) -> Result<i64>;
    /// The newest `TimeSerial` handed out, settled or not: what a person reads beside a task's
    /// watermark. Unlike [`UsageStore::max_time_serial`] it never waits for writes in flight
    /// (on PostgreSQL that wait holds up new uploads for a moment), so reads for display use it.
    async fn newest_time_serial(&self) -> Result<i64>;
    /// Records with `after_serial < time_serial <= upto_serial`, in `(time_serial, id)` order,
    /// after the record `(after_serial_of_page, after_id)`: a page of `limit`.
    async fn usage_by_serial(
        &self,
        range: (i64, i64),
        after: (i64, i64),
        limit: i64,
    ) -> Result<Vec<UsageRecord>>;
    /// Records whose period overlaps `[from, to)` (an instant at `from` included).
    async fn usage_overlapping(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<UsageRecord>>;
    /// [`UsageStore::usage_overlapping`] for the devices of `sites` only: a parent's records
    /// of one branch, filtered by the database rather than after reading every site's.
    async fn usage_overlapping_in(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        sites: &[tally_core::SiteCode],
    ) -> Result<Vec<UsageRecord>>;
    /// The clock hours (UTC) of the start and of the end of the records with `after_serial <
    /// time_serial <= upto_serial`, each pair once, the database doing the work: how the hourly
    /// summariser finds which hours new records may touch without reading each record. Records
    /// that start after they end are left out (they touch no hour). `None` when some stored
    /// time cannot be read that way: the caller reads the records instead.
    async fn usage_hour_spans(
        &self,
        range: (i64, i64),
    ) -> Result<Option<Vec<(DateTime<Utc>, DateTime<Utc>)>>>;
    /// Records with `time_serial > watermark`: what a summariser has still to read.
    async fn usage_pending(&self, watermark: i64) -> Result<i64>;
    /// Marks raw records summarised by both summaries (`time_serial <= summarised`) and ended
    /// before `before` as `Released`, deletes them, and returns how many.
    async fn delete_aged_usage(&self, before: DateTime<Utc>, summarised: i64) -> Result<u64>;
}
