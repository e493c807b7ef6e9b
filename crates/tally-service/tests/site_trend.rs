//! A parent's compliance trend narrowed to one site (`tally compliance --trend --site CODE`) on
//! SQLite and on PostgreSQL: the kept snapshots are the whole subtree's, so each day that has
//! them is computed again over the site's devices as a past day's position is (installations
//! counted from the day they were installed), on the snapshots' days only; over 92 days back
//! is refused. A site's positions (the console's and the API's `?site=`) are kept like the
//! whole subtree's, and are what a computation over the site's devices gives.

#[path = "../../tally-store/tests/common/pgdb.rs"]
mod common;

use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use common::Backend;
use tally_core::history::Snapshot;
use tally_core::{Site, SiteCode};
use tally_service::import_files::Reading;
use tally_service::{compliance, trends, Service, ServiceError};
use tally_store::Store;

each_backend!(async
    a_sites_trend_is_each_kept_day_computed_over_its_devices,
    a_sites_positions_are_kept_and_are_its_devices_computation,
);

fn code(text: &str) -> SiteCode {
    SiteCode::parse(text).unwrap()
}

/// Imports the CSV `files` (name, text) as site `site`.
async fn import(store: &dyn Store, site: &str, files: &[(&str, &str)]) {
    let mut reading = Reading::default();
    for (name, text) in files {
        reading.read(name, text.as_bytes()).unwrap();
    }
    assert!(reading.errors.is_empty(), "{:?}", reading.errors);
    let site = code(site);
    (store.import(&reading.batch, &site, Utc::now(), &|_| {}, None))
        .await
        .unwrap();
}

/// (days before today, application, required) of each point.
fn seen(points: &[tally_api::TrendPoint], today: NaiveDate) -> Vec<(i64, String, i64)> {
    (points.iter())
        .map(|p| {
            let back = (today - p.snapshot.day).num_days();
            (back, p.application.clone(), p.snapshot.required)
        })
        .collect()
}

/// A centre CEN with a branch P01 below it: Editor installed on the centre's computer ten days
/// ago and on the branch's three days ago.
async fn centre_and_branch(backend: &Backend) -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.url(&dir.path().join("t.db"));
    let store: Arc<dyn Store> = tally_store::open(&url).await.unwrap();
    store
        .put_site(&Site::central(code("CEN"), "Centre"))
        .await
        .unwrap();
    let branch = Site::below(code("P01"), "Branch", code("CEN"));
    store.put_site(&branch).await.unwrap();
    let today = Utc::now().date_naive();
    let ago = |days: i64| (today - Duration::days(days)).to_string();
    // Editor on the centre's computer for ten days, on the branch's for three; Viewer nowhere.
    let apps = r#"[{"name": "Editor", "metric": "installations", "software": "editor*"},
                   {"name": "Viewer", "metric": "installations", "software": "viewer*"}]"#;
    let installed = |host: &str, days: i64| {
        format!(
            "host_name,software,version,installed_on\n{host},editor-pro,2,{}\n",
            ago(days)
        )
    };
    let at_centre = installed("pc-cen", 10);
    let files = [
        ("applications.json", apps),
        ("devices.csv", "host_name\npc-cen\n"),
        ("installations.csv", at_centre.as_str()),
    ];
    import(store.as_ref(), "CEN", &files).await;
    let at_branch = installed("pc-p01", 3);
    let files = [
        ("devices.csv", "host_name\npc-p01\n"),
        ("installations.csv", at_branch.as_str()),
    ];
    import(store.as_ref(), "P01", &files).await;
    (dir, store)
}

async fn a_sites_trend_is_each_kept_day_computed_over_its_devices(backend: Backend) {
    let (_dir, store) = centre_and_branch(&backend).await;
    let today = Utc::now().date_naive();
    let ago = |days: i64| (today - Duration::days(days)).to_string();

    // Snapshots kept five days ago and today (their figures are the whole subtree's: here a
    // mark no computation gives), none in between.
    let ids: Vec<(i64, String)> = (store.applications().await.unwrap().into_iter())
        .map(|a| (a.application.id, a.application.name))
        .collect();
    for back in [5, 0] {
        let day = today - Duration::days(back);
        let rows: Vec<Snapshot> = (ids.iter())
            .map(|(id, _)| Snapshot {
                day,
                application_id: *id,
                required: 99,
                owned: 0,
                covered: 0,
                shortfall: 99,
                surplus: 0,
                status: "under_licensed".into(),
            })
            .collect();
        store.put_snapshots(day, &rows).await.unwrap();
    }
    let points = |app: Option<&'static str>, sites: Vec<&'static str>| {
        let store = store.clone();
        async move {
            let sites: Vec<SiteCode> = sites.into_iter().map(code).collect();
            let got = trends::snapshots_in(store.as_ref(), app, None, today, &sites).await;
            seen(&got.unwrap(), today)
        }
    };
    let row = |back: i64, app: &str, required: i64| (back, app.to_string(), required);

    // Without a site: the kept snapshots as they are.
    let kept = trends::snapshots(store.as_ref(), Some("editor"), None, today).await;
    let kept = seen(&kept.unwrap(), today);
    assert_eq!(kept, [row(5, "Editor", 99), row(0, "Editor", 99)]);
    // The branch: nothing installed there five days ago, its one installation today.
    assert_eq!(
        points(None, vec!["P01"]).await,
        [
            row(5, "Editor", 0),
            row(5, "Viewer", 0),
            row(0, "Editor", 1),
            row(0, "Viewer", 0)
        ]
    );
    assert_eq!(
        points(Some("EDITOR"), vec!["P01"]).await,
        [row(5, "Editor", 0), row(0, "Editor", 1)]
    );
    // The centre's own subtree: its computer on both days, the branch's today.
    assert_eq!(
        points(Some("Editor"), vec!["CEN", "P01"]).await,
        [row(5, "Editor", 1), row(0, "Editor", 2)]
    );

    // At most 92 days back, the refusal naming the first day that can be asked for.
    let p01 = [code("P01")];
    let from = |days: i64| Some(today - Duration::days(days));
    let asked = trends::snapshots_in(store.as_ref(), None, from(91), today, &p01).await;
    assert_eq!(asked.unwrap().len(), 4);
    let refused = trends::snapshots_in(store.as_ref(), None, from(92), today, &p01).await;
    match refused {
        Err(ServiceError::Invalid(m)) => {
            assert!(m.contains("92 days") && m.contains(&ago(91)), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let unknown = trends::snapshots_in(store.as_ref(), Some("Nope"), None, today, &p01).await;
    assert!(
        matches!(unknown, Err(ServiceError::NotFound(_))),
        "{unknown:?}"
    );
}

async fn a_sites_positions_are_kept_and_are_its_devices_computation(backend: Backend) {
    let (_dir, store) = centre_and_branch(&backend).await;
    let service = Service::new(store.clone(), code("CEN"));
    let today = Utc::now().date_naive();
    // (whole subtree, narrowed to sites)
    let computations = || {
        let kept = service.kept_positions();
        (kept.computations(), kept.narrowed_computations())
    };
    let editor = |positions: Vec<tally_api::AppPosition>| {
        let editor = positions.iter().find(|p| p.application == "Editor");
        editor.expect("Editor").required
    };
    let p01 = [code("P01")];

    let kept = service.positions_in(today, None, &p01).await.unwrap();
    let computed = compliance::compute_in(store.as_ref(), today, None, &p01).await;
    assert_eq!(kept, computed.unwrap());
    assert_eq!((editor(kept), computations()), (1, (0, 1)));
    // Asked again, with one application, and in detail: served from what was kept.
    let again = service.positions_in(today, Some("editor"), &p01).await;
    assert_eq!((editor(again.unwrap()), computations()), (1, (0, 1)));
    let page = (100, 0);
    let detail = service
        .position_detail_in(today, "Editor", page, &p01)
        .await;
    let computed = compliance::detail_in(store.as_ref(), today, "Editor", page, &p01).await;
    assert_eq!(detail.unwrap(), computed.unwrap());
    assert_eq!(computations(), (0, 1));

    // Other sites, in any order, and the whole subtree are kept apart from it.
    let both = [code("P01"), code("CEN")];
    let kept = service.positions_in(today, None, &both).await.unwrap();
    assert_eq!((editor(kept), computations()), (2, (0, 2)));
    let both = [code("CEN"), code("P01")];
    let kept = service.positions_in(today, None, &both).await.unwrap();
    assert_eq!((editor(kept), computations()), (2, (0, 2)));
    let whole = service.positions(today, None).await.unwrap();
    assert_eq!((editor(whole), computations()), (2, (1, 2)));
    let branch = service.positions_in(today, None, &p01).await.unwrap();
    assert_eq!((editor(branch), computations()), (1, (1, 2)));
    // Two sets of sites are kept, the least recently served goes: P01 was served after
    // CEN+P01, so a third set (CEN alone) pushes CEN+P01 out; P01 is still kept.
    let cen = service.positions_in(today, None, &[code("CEN")]).await;
    assert_eq!((editor(cen.unwrap()), computations()), (1, (1, 3)));
    let branch = service.positions_in(today, None, &p01).await.unwrap();
    assert_eq!((editor(branch), computations()), (1, (1, 3)));
    let both = service.positions_in(today, None, &both).await.unwrap();
    assert_eq!((editor(both), computations()), (2, (1, 4)));

    // A second computer at the branch with Editor: a change a person makes (an import), so
    // the branch's kept position is computed again at once.
    let files = [
        ("devices.csv", "host_name\npc-p01b\n"),
        (
            "installations.csv",
            "host_name,software,version\npc-p01b,editor-pro,2\n",
        ),
    ];
    import(store.as_ref(), "P01", &files).await;
    let branch = service.positions_in(today, None, &p01).await.unwrap();
    assert_eq!((editor(branch), computations()), (2, (1, 5)));
}
