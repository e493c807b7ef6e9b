//! A fresh store for the unit tests: site S01 and one device on a SQLite file.

use chrono::{DateTime, Utc};
use tally_core::device::NewDevice;
use tally_core::{Site, SiteCode};
use tally_store::prelude::*;

/// A SQLite store in a new temporary directory holding site S01 and the device `pc` created at
/// `at`, with that device's id.
pub(crate) async fn with_a_device(
    at: DateTime<Utc>,
) -> (tempfile::TempDir, tally_store::SqliteStore, i64) {
    let dir = tempfile::tempdir().unwrap();
    let store = tally_store::SqliteStore::open(&dir.path().join("t.db"))
        .await
        .unwrap();
    let site = SiteCode::parse("S01").unwrap();
    store
        .put_site(&Site::central(site.clone(), "Main"))
        .await
        .unwrap();
    let new = NewDevice::named(&site, "pc");
    let device = store.create_device(&new, at).await.unwrap().id;
    (dir, store, device)
}
