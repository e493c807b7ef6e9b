//! A large import of usage sessions or installations on SQLite sets the table's index and row
//! triggers aside and builds them again in the same transaction (`queries/import.rs`,
//! `SetAside`): after it they are in place as the migrations made them, the data is all there
//! and the generations moved once; an import that fails after them leaves them in place too,
//! and stores nothing.

use chrono::{Duration, TimeZone, Utc};
use tally_core::import::{
    ApplicationRow, Batch, DeviceRow, InstallationRow, Origin, SessionRow, UserRow,
};
use tally_core::{Metric, Site, SiteCode};
use tally_store::prelude::*;
use tally_store::SqliteStore;

/// More than the import's threshold for setting the index aside.
const SESSIONS: usize = 100_000;

const ASIDE: [&str; 2] = [
    "usage_sessions_application",
    "usage_sessions_insert_observed",
];

fn at(line: usize) -> Origin {
    Origin {
        file: "t".into(),
        line,
    }
}

fn batch() -> Batch {
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    let session = |i: usize| SessionRow {
        application: "Office".into(),
        host_name: "pc1".into(),
        account: "ann".into(),
        start: start + Duration::seconds(i as i64),
        end: start + Duration::seconds(i as i64 + 60),
    };
    Batch {
        devices: vec![(
            at(2),
            DeviceRow {
                host_name: "pc1".into(),
                ..Default::default()
            },
        )],
        users: vec![(
            at(2),
            UserRow {
                account: "ann".into(),
                ..Default::default()
            },
        )],
        applications: vec![(at(2), ApplicationRow::new("Office", Metric::Users))],
        sessions: (0..SESSIONS).map(|i| (at(i + 2), session(i))).collect(),
        ..Default::default()
    }
}

async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    let site = SiteCode::parse("S01").unwrap();
    store.put_site(&Site::central(site, "Main")).await.unwrap();
    (dir, store)
}

/// `batch` imported into site S01 now.
async fn import(
    store: &SqliteStore,
    batch: &Batch,
) -> tally_store::Result<tally_core::import::ImportOutcome> {
    let site = SiteCode::parse("S01").unwrap();
    store.import(batch, &site, Utc::now(), &|_| {}, None).await
}

/// Asserts that SQLite's plan for `read` uses `index`.
async fn assert_uses(store: &SqliteStore, read: &str, index: &str) {
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("EXPLAIN QUERY PLAN {read}"))
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert!(plan.iter().any(|p| p.3.contains(index)), "{plan:?}");
}

/// The schema statements of the objects set aside, as they stand.
async fn set_aside_objects(store: &SqliteStore) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for name in ASIDE {
        let sql: Option<String> =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = $1")
                .bind(name)
                .fetch_optional(store.pool())
                .await
                .unwrap();
        found.push((name.to_string(), sql.unwrap_or_default()));
    }
    found
}

#[tokio::test]
async fn a_large_import_puts_the_sessions_index_and_trigger_back() {
    let (_dir, store) = store().await;
    let before = set_aside_objects(&store).await;
    assert!(before.iter().all(|(_, sql)| !sql.is_empty()), "{before:?}");
    let observed = store.generations().await.unwrap().observed;

    let outcome = import(&store, &batch()).await.unwrap();

    assert_eq!(outcome.sessions, SESSIONS as u64);
    assert_eq!(set_aside_objects(&store).await, before);
    // Once, not once per session: the trigger was set aside while they were loaded.
    assert_eq!(store.generations().await.unwrap().observed, observed + 1);
    let read = "SELECT device_id FROM usage_sessions WHERE application_id = 1 AND end_time >= 0";
    assert_uses(&store, read, "usage_sessions_application").await;
    // The trigger is back: the next session moves the generation again.
    let observed = store.generations().await.unwrap().observed;
    sqlx::query(
        "INSERT INTO usage_sessions (application_id, device_id, user_id, start_time, end_time)
         SELECT application_id, device_id, user_id, start_time, end_time
         FROM usage_sessions LIMIT 1",
    )
    .execute(store.pool())
    .await
    .unwrap();
    assert_eq!(store.generations().await.unwrap().observed, observed + 1);
}

#[tokio::test]
async fn a_large_import_that_fails_while_its_index_is_aside_stores_nothing() {
    let (_dir, store) = store().await;
    let before = set_aside_objects(&store).await;
    let mut failing = batch();
    // Resolved in the last chunk of sessions, when the index and trigger are set aside: the
    // session names no device.
    let last = failing.sessions.len() - 1;
    failing.sessions[last].1.host_name = "nowhere".into();

    let failed = import(&store, &failing).await;

    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(set_aside_objects(&store).await, before);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_sessions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

/// The import's threshold, over two devices.
const INSTALLATIONS: usize = 100_000;

/// Every index and trigger on the installations (name and statement), by name: all that a
/// bulk load sets aside must be back as the migrations made it, whatever its name.
async fn installations_schema(store: &SqliteStore) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT name, COALESCE(sql, '') FROM sqlite_master
         WHERE tbl_name = 'installed_software' AND type IN ('index', 'trigger') ORDER BY name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

fn installations() -> Batch {
    let device = |host: &str| {
        (
            at(2),
            DeviceRow {
                host_name: host.into(),
                ..Default::default()
            },
        )
    };
    let installation = |i: usize| InstallationRow {
        host_name: if i.is_multiple_of(2) { "pc1" } else { "pc2" }.into(),
        software: format!("Package {i:06}").into(),
        version: "1.0".into(),
        publisher: "Acme".into(),
        installed_on: None,
    };
    Batch {
        devices: vec![device("pc1"), device("pc2")],
        installations: (0..INSTALLATIONS)
            .map(|i| (at(i + 2), installation(i)))
            .collect(),
        ..Default::default()
    }
}

async fn inventory_generations(store: &SqliteStore) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT host_name, inventory_generation FROM devices ORDER BY host_name")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_large_import_of_installations_puts_their_index_and_triggers_back() {
    let (_dir, store) = store().await;
    let before = installations_schema(&store).await;
    let title = before
        .iter()
        .filter(|(name, _)| name == "installed_software_title");
    assert_eq!(title.count(), 1, "{before:?}");
    let observed = store.generations().await.unwrap().observed;

    let outcome = import(&store, &installations()).await.unwrap();

    assert_eq!(outcome.installations, INSTALLATIONS as u64);
    assert_eq!(installations_schema(&store).await, before);
    // Once each, not once per installation: the triggers were set aside meanwhile.
    assert_eq!(store.generations().await.unwrap().observed, observed + 1);
    let generations = inventory_generations(&store).await;
    assert_eq!(generations, [("pc1".into(), 1), ("pc2".into(), 1)]);
    let read = "SELECT device_id FROM installed_software
                WHERE name = 'Package 000001' AND publisher = 'Acme' AND version = '1.0'";
    assert_uses(&store, read, "installed_software_title").await;
    // The triggers are back: the next change moves both generations again.
    sqlx::query("UPDATE installed_software SET version = '2.0' WHERE name = 'Package 000000'")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(store.generations().await.unwrap().observed, observed + 2);
    let generations = inventory_generations(&store).await;
    assert_eq!(generations, [("pc1".into(), 2), ("pc2".into(), 1)]);
}

#[tokio::test]
async fn a_large_import_that_fails_while_its_installations_index_is_aside_stores_nothing() {
    let (_dir, store) = store().await;
    let observed = store.generations().await.unwrap().observed;
    // A trigger of the test's own (the import sets aside only its named objects) fails the
    // load at its last installation, and only while the title index is dropped: a load that
    // did not set it aside succeeds, and the test fails.
    let last = format!("Package {:06}", INSTALLATIONS - 1);
    sqlx::query(&format!(
        "CREATE TRIGGER fail_last BEFORE INSERT ON installed_software WHEN NEW.name = '{last}'
             AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'installed_software_title')
         BEGIN SELECT RAISE(ABORT, 'the test fails the load here'); END"
    ))
    .execute(store.pool())
    .await
    .unwrap();
    let before = installations_schema(&store).await;

    let failed = import(&store, &installations()).await;

    let message = format!("{failed:?}");
    assert!(
        message.contains("the test fails the load here"),
        "{message}"
    );
    assert_eq!(installations_schema(&store).await, before);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM installed_software")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0);
    assert_eq!(store.generations().await.unwrap().observed, observed);
    assert!(inventory_generations(&store).await.is_empty());
}
