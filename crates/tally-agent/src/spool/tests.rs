//! The spool's unit tests: bounding, rejection, state, schema upgrades.

use super::*;
use chrono::{Duration, TimeZone, Utc};
use tally_core::file::FileInfo;
use tally_core::wire::v1::UserRef;

fn record(id: &str, from: i64, to: i64, last: bool) -> UsageRecordV1 {
    let t = |m| Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap() + Duration::minutes(m);
    UsageRecordV1 {
        meter_data_id: id.into(),
        file: FileInfo {
            file_name: "code".into(),
            original_file_name: "code".into(),
            version: String::new(),
            product_name: String::new(),
            publisher: String::new(),
            language: tally_core::file::ANY_LANGUAGE,
        },
        user: UserRef {
            account: "ann".into(),
            full_name: None,
        },
        start_time: t(from),
        start_time_offset: 0,
        end_time: t(to),
        end_time_offset: 0,
        started: from == 0,
        still_running: !last,
        start_not_captured: false,
        end_not_captured: false,
        in_ts_session: false,
    }
}

async fn spool(max: u64) -> (tempfile::TempDir, Spool) {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(&dir.path().join("spool.db"), max)
        .await
        .unwrap();
    (dir, spool)
}

fn seconds(records: &[UsageRecordV1]) -> i64 {
    records
        .iter()
        .map(|r| (r.end_time - r.start_time).num_seconds())
        .sum()
}

#[tokio::test]
async fn a_full_spool_merges_an_instances_records_and_keeps_its_usage_time() {
    let (_dir, spool) = spool(4).await;
    let cycles: Vec<_> = (0..6)
        .map(|i| record("a", i * 15, (i + 1) * 15, i == 5))
        .collect();
    spool.push(&cycles, None).await.unwrap();
    let batch = spool.peek(100).await.unwrap().unwrap();
    assert_eq!(
        batch.records.len(),
        1,
        "six joined cycles become one record"
    );
    let r = &batch.records[0];
    assert!(r.started && !r.still_running);
    assert_eq!(seconds(&batch.records), seconds(&cycles));
    assert_eq!(spool.dropped().await.unwrap(), 0, "nothing dropped");
}

#[tokio::test]
async fn when_merging_is_not_enough_the_oldest_are_dropped_and_counted() {
    let (_dir, spool) = spool(3).await;
    let separate: Vec<_> = (0..5)
        .map(|i| record(&format!("i{i}"), 0, 1, true))
        .collect();
    spool.push(&separate, None).await.unwrap();
    assert_eq!(spool.len().await.unwrap(), 3);
    assert_eq!(spool.dropped().await.unwrap(), 2);
    let batch = spool.peek(10).await.unwrap().unwrap();
    let ids: Vec<&str> = batch
        .records
        .iter()
        .map(|r| r.meter_data_id.as_str())
        .collect();
    assert_eq!(ids, ["i2", "i3", "i4"], "the newest are kept");
    spool.ack(batch.first, batch.last, 2).await.unwrap();
    assert_eq!(spool.dropped().await.unwrap(), 0);
    assert_eq!(spool.len().await.unwrap(), 0);
}

#[tokio::test]
async fn an_invalid_record_is_moved_aside_not_uploaded_and_counted() {
    let (_dir, spool) = spool(100).await;
    let mut bad = record("bad", 10, 5, true);
    bad.end_time = bad.start_time - Duration::minutes(1);
    spool
        .push(&[record("ok", 0, 1, true), bad], None)
        .await
        .unwrap();
    let batch = spool.peek(10).await.unwrap().unwrap();
    assert_eq!(batch.records.len(), 1);
    assert_eq!(batch.records[0].meter_data_id, "ok");
    assert_eq!(spool.rejected().await.unwrap(), 1);
    assert_eq!(spool.dropped().await.unwrap(), 1);
}

#[tokio::test]
async fn state_is_written_with_the_records_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    {
        let spool = Spool::open(&path, 10).await.unwrap();
        spool
            .push(&[record("a", 0, 15, false)], Some(("meter", "{\"x\":1}")))
            .await
            .unwrap();
    }
    let spool = Spool::open(&path, 10).await.unwrap();
    assert_eq!(spool.len().await.unwrap(), 1);
    assert_eq!(
        spool.state("meter").await.unwrap().as_deref(),
        Some("{\"x\":1}")
    );
}

/// The schema a spool had before spools carried a version, as the agent created it on
/// open: [`SCHEMA`] (version 0's, never changed: later versions add steps) and the index.
fn unversioned_schema() -> String {
    format!("{SCHEMA}CREATE INDEX IF NOT EXISTS spool_instance ON spool (instance);")
}

/// Writes an unversioned spool at `path` from `schema`, holding `records`.
async fn unversioned(path: &Path, schema: &str, records: &[UsageRecordV1], instance: bool) {
    let options = SqliteConnectOptions::from_str("sqlite://")
        .unwrap()
        .filename(path)
        .create_if_missing(true);
    let pool = SqlitePool::connect_with(options).await.unwrap();
    sqlx::raw_sql(schema).execute(&pool).await.unwrap();
    for r in records {
        let json = serde_json::to_string(r).unwrap();
        let insert = if instance {
            sqlx::query("INSERT INTO spool (instance, record) VALUES ($1, $2)")
                .bind(&r.meter_data_id)
                .bind(json)
        } else {
            sqlx::query("INSERT INTO spool (record) VALUES ($1)").bind(json)
        };
        insert.execute(&pool).await.unwrap();
    }
    sqlx::raw_sql(
        "INSERT INTO state VALUES ('metering', '{\"boot_id\":\"b\"}'), ('dropped', '3');
         INSERT INTO rejected VALUES (99, '{}', 'bad', '2026-05-01T08:00:00Z');",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

async fn user_version(spool: &Spool) -> i64 {
    sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&spool.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unversioned_spool_is_upgraded_with_its_records_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let records: Vec<_> = (0..3).map(|i| record("a", i, i + 1, i == 2)).collect();
    unversioned(&path, &unversioned_schema(), &records, true).await;

    let spool = Spool::open(&path, 100).await.unwrap();
    assert_eq!(user_version(&spool).await, SCHEMA_VERSION);
    let batch = spool.peek(10).await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&batch.records).unwrap(),
        serde_json::to_value(&records).unwrap()
    );
    assert_eq!(
        spool.state("metering").await.unwrap().as_deref(),
        Some("{\"boot_id\":\"b\"}")
    );
    assert_eq!(spool.dropped().await.unwrap(), 3);
    assert_eq!(spool.rejected().await.unwrap(), 1);
    // Ids go on from where the old spool left them: a batch name is never reused.
    spool.push(&[record("b", 0, 1, true)], None).await.unwrap();
    let all = spool.peek(10).await.unwrap().unwrap();
    assert_eq!((all.first, all.last), (1, 4));

    drop(spool);
    let again = Spool::open(&path, 100).await.unwrap();
    assert_eq!(user_version(&again).await, SCHEMA_VERSION);
    assert_eq!(again.len().await.unwrap(), 4);
}

#[tokio::test]
async fn a_spool_from_before_records_carried_their_instance_gets_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let schema = unversioned_schema()
        .replace("instance TEXT NOT NULL DEFAULT '',", "")
        .replace(
            "CREATE INDEX IF NOT EXISTS spool_instance ON spool (instance);",
            "",
        );
    unversioned(&path, &schema, &[record("a", 0, 1, false)], false).await;
    let spool = Spool::open(&path, 1).await.unwrap();
    assert_eq!(user_version(&spool).await, SCHEMA_VERSION);
    spool.push(&[record("a", 1, 2, true)], None).await.unwrap();
    assert_eq!(
        spool.len().await.unwrap(),
        1,
        "the bound applies to old records too"
    );
}

#[tokio::test]
async fn a_spool_from_a_newer_agent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    drop(Spool::open(&path, 10).await.unwrap());
    let options = SqliteConnectOptions::from_str("sqlite://")
        .unwrap()
        .filename(&path);
    let pool = SqlitePool::connect_with(options).await.unwrap();
    sqlx::query("PRAGMA user_version = 99")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = Spool::open(&path, 10).await.err().expect("refused");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[tokio::test]
async fn the_batch_being_sent_is_neither_merged_nor_dropped() {
    let (_dir, spool) = spool(2).await;
    spool
        .push(
            &[record("a", 0, 15, false), record("a", 15, 30, false)],
            None,
        )
        .await
        .unwrap();
    let sending = spool.peek(10).await.unwrap().unwrap();
    spool.push(&[record("b", 0, 1, true)], None).await.unwrap();
    let batch = spool.peek(10).await.unwrap().unwrap();
    assert_eq!((batch.first, batch.last), (sending.first, sending.last + 1));
    assert_eq!(spool.dropped().await.unwrap(), 0);
    spool.sent();
    spool.push(&[record("c", 0, 1, true)], None).await.unwrap();
    assert_eq!(spool.len().await.unwrap(), 2, "bounded again once sent");
}
