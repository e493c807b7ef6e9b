//! The kept license position (`tally_service::positions`) on SQLite and on PostgreSQL: served
//! again while nothing it reads changes — a device's heartbeat included — computed again after
//! any change to what it reads, made through the service or straight in the database, and
//! always the position a fresh computation gives; what agents observe is followed once the
//! kept position is older than the site's refresh.

#[path = "../../tally-store/tests/common/pgdb.rs"]
mod common;

use std::sync::Arc;

use chrono::Utc;
use common::Backend;
use tally_core::import::{Batch, LicenseRow, Origin};
use tally_core::rules::RuleSpec;
use tally_core::{DeviceStatus, Site, SiteCode};
use tally_service::reclaim::{reclaim, ReclaimQuery};
use tally_service::{compliance, devices, licensing, rules, AppPosition, Service};
use tally_store::{Page, Store};

fn site() -> SiteCode {
    SiteCode::parse("S01").unwrap()
}

/// A new database for `backend` in `dir` holding site S01: its URL and its store.
async fn site_on(backend: &Backend, dir: &std::path::Path) -> (String, Arc<dyn Store>) {
    let url = backend.url(&dir.join("t.db"));
    let store: Arc<dyn Store> = tally_store::open(&url).await.unwrap();
    let main = Site::central(site(), "Main");
    store.put_site(&main).await.unwrap();
    (url, store)
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

/// One organisation license of Editor, added through the service.
async fn add_an_editor_license(service: &Service) {
    let license: LicenseRow = serde_json::from_value(serde_json::json!({
        "application": "Editor", "metric": "installations", "quantity": 1,
        "assignment_type": "organization"
    }))
    .unwrap();
    licensing::add_license(service, "ann", &license, Utc::now())
        .await
        .unwrap();
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
    let (url, store) = site_on(&backend, dir.path()).await;
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
    backend.execute(&url, seen).await;
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
    add_an_editor_license(&service).await;
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
    backend
        .execute(&url, "UPDATE licenses SET quantity = 3")
        .await;
    let p = editor(&service).await;
    assert_eq!((p.owned, p.surplus, computed()), (3, 2, 5));

    // The installation on pc1 is removed behind Tally's back: still seen.
    backend
        .execute(&url, "DELETE FROM installed_software")
        .await;
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

/// The reclaim list served by the service (kept inputs or not), after checking it is the one
/// a fresh read gives; with how many times its inputs were read.
async fn idle(service: &Service) -> (usize, usize, u64) {
    let query = ReclaimQuery::days(Utc::now().date_naive(), 30);
    let served = service.reclaim(&query).await.unwrap();
    let fresh = reclaim(service.store(), &query).await.unwrap();
    assert_eq!(served, fresh, "the served reclaim list is the fresh one");
    let reads = service.kept_positions().reclaim_reads();
    (served.idle.len(), served.no_usage_data.len(), reads)
}

async fn kept_reclaim_inputs_follow_the_usage_evidence(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (_, store) = site_on(&backend, dir.path()).await;
    let estate = serde_json::json!({
        "applications": [{"name": "Editor", "publisher": "Acme", "metric": "installations",
                          "software": "editor*", "metering_rule": "Editor"}],
        "devices": [{"host_name": "pc1"}],
        "installations": [{"host_name": "pc1", "software": "editor-pro", "version": "2"}],
    });
    import(store.as_ref(), estate).await;
    let service = Service::new(store.clone(), site());

    // No metering rule named Editor yet: its use cannot be known.
    assert_eq!(idle(&service).await, (0, 1, 1));
    assert_eq!(idle(&service).await, (0, 1, 1), "nothing changed: kept");

    // A metering rule is evidence the reclaim list reads, though no position does.
    let spec = RuleSpec {
        file_name: "editor".into(),
        ..RuleSpec::named("Editor")
    };
    rules::create(&service, "ann", &spec).await.unwrap();
    let (_, _, reads) = idle(&service).await;
    assert_eq!(reads, 2, "the rule made the inputs read again");
    assert_eq!(service.kept_positions().computations(), 0);

    // What a position reads moves the inputs too: pc1 retired leaves nothing to list.
    let pc1 = store.devices(Page::default()).await.unwrap()[0].id;
    devices::set_status(&service, "ann", pc1, DeviceStatus::Retired)
        .await
        .unwrap();
    assert_eq!(idle(&service).await, (0, 0, 3));
}

/// Editor's required quantity as the service serves it, kept or not, without comparing it with
/// a fresh computation (a position kept for new observations is allowed to lag them).
async fn editor_served(service: &Service) -> (i64, u64) {
    let today = Utc::now().date_naive();
    let served = service.positions(today, Some("Editor")).await.unwrap();
    (served[0].required, service.kept_positions().computations())
}

/// An installation of Editor on `host`, as an agent's inventory writes it.
fn installed_on(host: &str) -> String {
    format!(
        "INSERT INTO installed_software (device_id, name, version, publisher)
         SELECT id, 'editor-pro', '2', 'Acme' FROM devices WHERE host_name = '{host}'"
    )
}

async fn kept_positions_stand_for_what_agents_observe_until_the_refresh(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (url, store) = site_on(&backend, dir.path()).await;
    let estate = serde_json::json!({
        "applications": [{"name": "Editor", "publisher": "Acme", "metric": "installations",
                          "software": "editor*"}],
        "devices": [{"host_name": "pc1"}, {"host_name": "pc2"}, {"host_name": "pc3"}],
        "installations": [{"host_name": "pc1", "software": "editor-pro", "version": "2"}],
    });
    import(store.as_ref(), estate).await;
    backend
        .execute(&url, "INSERT INTO users (account) VALUES ('ann')")
        .await;
    let hour = std::time::Duration::from_secs(3600);
    let service = Service::new(store.clone(), site()).with_position_refresh(hour);
    assert_eq!(editor_served(&service).await, (1, 1));

    // What agents observe — an installation, new hardware, a session — within the hour: the
    // kept position stands.
    backend.execute(&url, &installed_on("pc2")).await;
    backend.execute(&url, "UPDATE devices SET cores = 8").await;
    let session = "INSERT INTO usage_sessions (application_id, device_id, user_id, start_time,
            end_time)
        SELECT a.id, d.id, u.id, '2026-11-30T09:00:00+00:00', '2026-11-30T10:00:00+00:00'
        FROM applications a, devices d, users u WHERE d.host_name = 'pc1'";
    backend.execute(&url, session).await;
    assert_eq!(
        editor_served(&service).await,
        (1, 1),
        "kept within the hour"
    );

    // A person's change is followed at once, and the position then holds the observations too.
    add_an_editor_license(&service).await;
    assert_eq!(editor_served(&service).await, (2, 2));
    assert_eq!(editor(&service).await.required, 2, "the fresh one");

    // An import is a person's change, even when it writes only installations.
    let more = serde_json::json!({
        "installations": [{"host_name": "pc3", "software": "editor-pro", "version": "2"}],
    });
    import(store.as_ref(), more).await;
    assert_eq!(editor_served(&service).await, (3, 3));

    // Once the kept position is older than the refresh, an observation is followed.
    let brief = std::time::Duration::from_millis(50);
    let quick = Service::new(store.clone(), site()).with_position_refresh(brief);
    assert_eq!(editor_served(&quick).await, (3, 1));
    backend
        .execute(
            &url,
            "DELETE FROM installed_software WHERE name = 'editor-pro'",
        )
        .await;
    tokio::time::sleep(brief * 2).await;
    assert_eq!(
        editor_served(&quick).await,
        (0, 2),
        "older than the refresh"
    );
}

/// Polls `done` until it holds, for at most a minute.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn positions_are_computed_ahead_of_their_readers(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (_, store) = site_on(&backend, dir.path()).await;
    let estate = serde_json::json!({
        "applications": [{"name": "Editor", "publisher": "Acme", "metric": "installations",
                          "software": "editor*"}],
        "devices": [{"host_name": "pc1"}],
        "installations": [{"host_name": "pc1", "software": "editor-pro", "version": "2"}],
    });
    import(store.as_ref(), estate).await;
    let service = Arc::new(Service::new(store.clone(), site()));
    let check = std::time::Duration::from_millis(20);
    let warm = tokio::spawn(tally_service::positions::keep_warm(
        Arc::downgrade(&service),
        check,
    ));
    let kept = service.kept_positions();
    let both =
        |positions, inputs| kept.computations() == positions && kept.reclaim_reads() == inputs;
    eventually("computed at the start", || both(1, 1)).await;

    // A license added: computed again before anyone asks; the reader then finds it kept.
    add_an_editor_license(&service).await;
    eventually("computed after the change", || both(2, 2)).await;
    let today = Utc::now().date_naive();
    let editor = service.positions(today, Some("Editor")).await.unwrap();
    assert_eq!((editor[0].owned, kept.computations()), (1, 2));
    let pc1 = store.devices(Page::default()).await.unwrap()[0].id;
    service.last_use_on(today, pc1).await.unwrap();
    assert_eq!(
        kept.reclaim_reads(),
        2,
        "the reclaim inputs were kept warm too"
    );

    // Nothing changed: nothing computed however often it looks.
    tokio::time::sleep(check * 10).await;
    assert!(both(2, 2));

    // The service gone, the warming ends.
    drop(service);
    tokio::time::timeout(std::time::Duration::from_secs(60), warm)
        .await
        .expect("the warming ends with the service")
        .unwrap();
}

each_backend!(
    async kept_positions_follow_every_change,
    positions_are_computed_ahead_of_their_readers,
    kept_reclaim_inputs_follow_the_usage_evidence,
    kept_positions_stand_for_what_agents_observe_until_the_refresh
);
