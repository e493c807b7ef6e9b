//! The summarisers' reads of raw usage (`usage_by_serial`, `usage_overlapping`,
//! `usage_hour_spans`) against the plain API read (`usage_records`, a decoded row each) of
//! the same records, on both backends. SQLite reads the first two as text pages: records
//! span several pages here, and their `MeterDataID`s hold the characters that text uses.

mod common;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, DurationRound, TimeDelta, TimeZone, Utc};
use tally_core::device::NewDevice;
use tally_core::{FileInfo, Site, SiteCode, UsageRecord};
use tally_store::prelude::*;
use tally_store::{NewUsageRecord, Page, UsageQuery};

on_both_backends!(summariser_reads_match_the_plain_read);

/// More than one of SQLite's text pages (20,000 records) in every read below.
const RECORDS: usize = 45_000;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// Record `n`: varied ids (commas, newlines, non-ASCII), flags, offsets and periods (instants,
/// ends on the hour, ends before the start), many sharing an end time (so pages break inside
/// a run of equal ends).
fn record(n: usize, devices: &[i64], user: i64, files: &[i64]) -> NewUsageRecord {
    let ids = ["m{n}", "a,b{n}", "x\ny{n}", "Grüße {n}", "{n}"];
    let start = base()
        + Duration::seconds((n as i64 * 7919) % (3 * 86_400))
        + Duration::microseconds(n as i64 % 3 * 250_000);
    let end = match n % 4 {
        _ if n.is_multiple_of(13) => start - Duration::minutes(1), // ends before it starts: no hours
        0 => start,                                                // an instant
        1 => start.duration_trunc(TimeDelta::hours(1)).unwrap() + Duration::hours(2),
        _ => start + Duration::minutes((n % 97) as i64),
    };
    NewUsageRecord {
        meter_data_id: ids[n % ids.len()].replace("{n}", &n.to_string()),
        device_id: devices[n % devices.len()],
        file_id: files[n % files.len()],
        user_id: user,
        start_time: start,
        start_time_offset: (n % 5) as i32 * 60 - 120,
        end_time: end,
        end_time_offset: 60,
        started: n.is_multiple_of(2),
        still_running: n.is_multiple_of(3),
        start_not_captured: n.is_multiple_of(5),
        end_not_captured: n.is_multiple_of(7),
        in_ts_session: n.is_multiple_of(11),
    }
}

async fn load(store: &dyn Store) -> (i64, i64) {
    let site = SiteCode::parse("S01").unwrap();
    store
        .put_site(&Site::central(site.clone(), "Main"))
        .await
        .unwrap();
    let mut devices = Vec::new();
    for d in 0..3 {
        let new = NewDevice::named(&site, format!("pc{d}"));
        devices.push(store.create_device(&new, base()).await.unwrap().id);
    }
    let user = store.upsert_user("alice", None).await.unwrap();
    let mut files = Vec::new();
    for name in ["code", "vim"] {
        let info = FileInfo::named(name, "1");
        files.push(store.upsert_file(&info).await.unwrap());
    }
    let all: Vec<_> = (0..RECORDS)
        .map(|n| record(n, &devices, user, &files))
        .collect();
    let first = store.insert_usage(&all[..RECORDS / 3]).await.unwrap();
    let rest = store.insert_usage(&all[RECORDS / 3..]).await.unwrap();
    assert_eq!(first.stored + rest.stored, RECORDS as u64);
    (first.time_serial, rest.time_serial)
}

/// Every record through the API's read, a decoded row each.
async fn plain(store: &dyn Store) -> Vec<UsageRecord> {
    let mut all = Vec::new();
    loop {
        let query = UsageQuery {
            page: Page {
                after: all.last().map_or(0, |r: &UsageRecord| r.id),
                limit: 10_000,
            },
            ..Default::default()
        };
        let page = store.usage_records(&query).await.unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

async fn summariser_reads_match_the_plain_read(store: &dyn Store) {
    let (first, last) = load(store).await;
    let all = plain(store).await;
    assert_eq!(all.len(), RECORDS);

    // By serial: one call past a text page, then the rest, in (time_serial, id) order.
    let head = store
        .usage_by_serial((0, last), (0, 0), 30_000)
        .await
        .unwrap();
    let after = head.last().map(|r| (r.time_serial, r.id)).unwrap();
    let tail = store
        .usage_by_serial((0, last), after, 30_000)
        .await
        .unwrap();
    let mut expected = all.clone();
    expected.sort_by_key(|r| (r.time_serial, r.id));
    assert_eq!([head, tail].concat(), expected);
    let newer = store
        .usage_by_serial((first, last), (0, 0), 100_000)
        .await
        .unwrap();
    assert_eq!(newer.len(), RECORDS - RECORDS / 3);
    assert!(newer.iter().all(|r| r.time_serial == last));

    // Overlapping two days: every record ending in them or after that starts before the end.
    let (from, to) = (base() + Duration::hours(12), base() + Duration::hours(60));
    let mut got = store.usage_overlapping(from, to).await.unwrap();
    got.sort_by_key(|r| r.id);
    let want: Vec<_> = all
        .iter()
        .filter(|r| r.end_time >= from && r.start_time < to)
        .cloned()
        .collect();
    assert!(want.len() > 20_000, "spans SQLite's text pages");
    assert_eq!(got, want);

    // The hours of the newer records' starts and ends, as computed here from each record.
    let hour = |t: DateTime<Utc>| t.duration_trunc(TimeDelta::hours(1)).unwrap();
    let new = all.iter().filter(|r| r.time_serial > first);
    let want: BTreeSet<_> = new
        .filter(|r| r.start_time <= r.end_time)
        .map(|r| (hour(r.start_time), hour(r.end_time)))
        .collect();
    let spans = store
        .usage_hour_spans((first, last))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spans.len(), want.len(), "each pair once");
    let got: BTreeSet<_> = spans.into_iter().collect();
    assert_eq!(got, want);
}
