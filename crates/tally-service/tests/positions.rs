//! The kept license position (`tally_service::positions`) on SQLite and on PostgreSQL: served
//! again while nothing it reads changes — a device's heartbeat included — computed again after
//! any change to what it reads, made through the service or straight in the database, and
//! always the position a fresh computation gives.

#[path = "../../tally-store/tests/common/pgdb.rs"]
mod common;

use std::sync::Arc;

use chrono::Utc;
use common::Backend;
use sqlx::Connection;
use tally_core::import::{Batch, LicenseRow, Origin};
use tally_core::{DeviceStatus, Site, SiteCode};
use tally_service::{compliance, devices, licensing, AppPosition, Service};
use tally_store::{Page, Store};

fn site() -> SiteCode {
    SiteCode::parse("S01").unwrap()
}

/// An estate read from JSON rows: `rows` maps each batch field to its rows.
fn batch(rows: serde_json::Value) -> Batch {
    let origin = || Origin {
        file: "setup".into(),
        line: 1,
    };
    let mut batch = Batch::default();
    let kinds = rows.as_object().unwrap();
    for (kind, rows) in kinds {
        for row in rows.as_array().unwrap() {
            let row = row.clone();
            match kind.as_str() {
                "devices" => batch
                    .devices
                    .push((origin(), serde_json::from_value(row).unwrap())),
                "applications" => batch
                    .applications
                    .push((origin(), serde_json::from_value(row).unwrap())),
                "installations" => batch
                    .installations
                    .push((origin(), serde_json::from_value(row).unwrap())),
                other => panic!("no rows of kind {other}"),
            }
        }
    }
    batch
}

async fn import(store: &dyn Store, rows: serde_json::Value) {
    store
        .import(&batch(rows), &site(), Utc::now(), &|_| {}, None)
        .await
        .unwrap();
}

/// Executes `sql` on the test's database, outside the store and the service.
async fn execute(backend: &Backend, url: &str, sql: &str) {
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
        Backend::Postgres(_) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
    }
}

/// Editor's position, served by the service (kept or not), after checking it is the one a
/// fresh computation gives.
async fn editor(service: &Service) -> AppPosition {
    let today = Utc::now().date_naive();
    let served = service.positions(today, None).await.unwrap();
    let fresh = compliance::compute(service.store(), today, None)
        .await
        .unwrap();
    assert_eq!(served, fresh, "the served position is the fresh one");
    served
        .into_iter()
        .find(|p| p.application == "Editor")
        .unwrap()
}

async fn kept_positions_follow_every_change(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.url(&dir.path().join("t.db"));
    let store: Arc<dyn Store> = tally_store::open(&url).await.unwrap();
    let main = Site {
        code: site(),
        name: "Main".into(),
        alias: None,
        parent: None,
    };
    store.put_site(&main).await.unwrap();
    import(
        store.as_ref(),
        serde_json::json!({
            "applications": [{"name": "Editor", "publisher": "Acme", "metric": "installations",
                              "software": "editor*"}],
            "devices": [{"host_name": "pc1"}, {"host_name": "pc2"}],
            "installations": [{"host_name": "pc1", "software": "editor-pro", "version": "2"}],
        }),
    )
    .await;
    let service = Service::new(store.clone(), site());
    let computed = || service.kept_positions().computations();

    assert_eq!((editor(&service).await.required, computed()), (1, 1));
    assert_eq!(editor(&service).await.required, 1);
    assert_eq!(
        computed(),
        1,
        "nothing changed: the kept position is served"
    );

    // A heartbeat writes a column no position reads.
    let seen = "UPDATE devices SET last_seen = '2026-12-01T10:00:00+00:00'";
    execute(&backend, &url, seen).await;
    editor(&service).await;
    assert_eq!(
        computed(),
        1,
        "a heartbeat leaves the kept position standing"
    );

    // An installation arrives (straight in the database's tables, by import).
    let more = serde_json::json!({
        "installations": [{"host_name": "pc2", "software": "editor-pro", "version": "2"}],
    });
    import(store.as_ref(), more).await;
    assert_eq!((editor(&service).await.required, computed()), (2, 2));

    // A license is added through the service.
    let license: LicenseRow = serde_json::from_value(serde_json::json!({
        "application": "Editor", "metric": "installations", "quantity": 1,
        "assignment_type": "organization"
    }))
    .unwrap();
    licensing::add_license(&service, "ann", &license, Utc::now())
        .await
        .unwrap();
    let p = editor(&service).await;
    assert_eq!((p.owned, p.shortfall, computed()), (1, 1, 3));

    // A device is retired through the service.
    let pc2 = store.devices(Page::default()).await.unwrap();
    let pc2 = pc2.iter().find(|d| d.host_name == "pc2").unwrap().id;
    devices::set_status(&service, "ann", pc2, DeviceStatus::Retired)
        .await
        .unwrap();
    let p = editor(&service).await;
    assert_eq!((p.required, p.shortfall, computed()), (1, 0, 4));

    // The license's quantity is changed behind Tally's back: still seen.
    execute(&backend, &url, "UPDATE licenses SET quantity = 3").await;
    let p = editor(&service).await;
    assert_eq!((p.owned, p.surplus, computed()), (3, 2, 5));

    // The installation on pc1 is removed behind Tally's back: still seen.
    execute(&backend, &url, "DELETE FROM installed_software").await;
    let p = editor(&service).await;
    assert_eq!((p.required, computed()), (0, 6));

    // A past day is kept beside today, each under its own key.
    let yesterday = Utc::now().date_naive() - chrono::Duration::days(1);
    service.positions(yesterday, None).await.unwrap();
    service.positions(yesterday, Some("editor")).await.unwrap();
    editor(&service).await;
    assert_eq!(computed(), 7, "yesterday computed once, today still kept");

    // The detail and one application's summary come from the same kept positions.
    let today = Utc::now().date_naive();
    let detail = service.position_detail(today, "EDITOR", (10, 0)).await;
    assert_eq!(detail.unwrap().position.application, "Editor");
    let missing = service.positions(today, Some("nothing")).await.unwrap_err();
    assert!(
        missing.to_string().contains("no application named"),
        "{missing}"
    );
    assert_eq!(computed(), 7);
}

each_backend!(async kept_positions_follow_every_change);
