//! A write transaction that reads before it writes must take SQLite's write lock when it
//! begins. Begun deferred, it reads from a snapshot; if another connection commits a write
//! before it gets the lock, SQLite cannot move it to the newer snapshot and fails it at once
//! with "database is locked" (SQLITE_BUSY_SNAPSHOT), whatever the busy timeout. Begun with
//! `BEGIN IMMEDIATE`, it waits for the other writer and then reads what that one wrote.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use sqlx::Connection;
use tally_core::device::NewDevice;
use tally_core::{DeviceStatus, Site, SiteCode};
use tally_store::prelude::*;
use tally_store::SqliteStore;

#[tokio::test]
async fn a_status_change_waits_for_a_writer_holding_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 3, 31, 8, 0, 0).unwrap();
    let site = SiteCode::parse("S01").unwrap();
    store
        .put_site(&Site::central(site.clone(), "Main"))
        .await
        .unwrap();
    let device = store
        .create_device(&NewDevice::named(&site, "pc1"), at)
        .await
        .unwrap();

    // Another writer holds the lock and has written, uncommitted.
    let mut other = store.pool().acquire().await.unwrap();
    let mut writing = other.begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("UPDATE devices SET status = 'stolen' WHERE id = $1")
        .bind(device.id)
        .execute(&mut *writing)
        .await
        .unwrap();

    let changing = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .set_device_status(device.id, DeviceStatus::Retired, at, None)
                .await
        })
    };
    // Long enough for a deferred transaction to have read its snapshot and be waiting for
    // the lock; an immediate one is still waiting to begin.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    writing.commit().await.unwrap();
    drop(other);

    let changed = changing.await.unwrap();
    let changed = changed.expect("the status change waits for the other writer, then succeeds");
    assert_eq!(changed.unwrap().status, DeviceStatus::Retired);
    // It read what the other writer committed: the status it replaced is 'stolen'.
    let then = store
        .status_changes(at - chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(then.len(), 1, "{then:?}");
    assert_eq!(then[0].old_status, "stolen");
}
