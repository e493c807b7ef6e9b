//! The dashboard's agents in trouble on SQLite and on PostgreSQL: an agent silent since before
//! the cut-off (or never heard from) is silent, one that reported spool drops is dropping, a
//! revoked agent is neither, and each is named by its computer; and the position's trend taken
//! from the daily snapshots a week apart.

#[path = "../../tally-store/tests/common/pgdb.rs"]
mod common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use common::Backend;
use tally_core::{Site, SiteCode};
use tally_service::dashboard::{agent_trouble, position_trend};
use tally_service::{licensing, Service};
use tally_store::Store;
use tally_store::{NewAgent, NewEnrollmentToken};

each_backend!(async
    silent_and_dropping_agents_are_named_by_computer,
    the_trend_takes_the_newest_snapshot_of_each_week,
);

fn agent(id: &str) -> NewAgent {
    NewAgent {
        agent_id: id.into(),
        secret_hash: format!("secret-of-{id}"),
        host_name: format!("pc-{id}"),
        fqdn: None,
        os: None,
        serial: None,
        machine_id: None,
    }
}

async fn silent_and_dropping_agents_are_named_by_computer(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.url(&dir.path().join("t.db"));
    let store: Arc<dyn Store> = tally_store::open(&url).await.unwrap();
    let site = SiteCode::parse("S01").unwrap();
    let main = Site::central(site.clone(), "Main");
    store.put_site(&main).await.unwrap();
    let now = Utc::now();
    let token = NewEnrollmentToken {
        site_code: site,
        name: "all".into(),
        expires_at: None,
        max_uses: None,
    };
    store
        .create_enrollment_token(&token, "enrol", now, None)
        .await
        .unwrap();
    for id in ["quiet", "busy", "never", "gone"] {
        let enrolled = store.enroll_agent("enrol", &agent(id), now, None).await;
        assert!(enrolled.unwrap().is_some(), "{id} enrolled");
    }
    let two_hours_ago = now - Duration::hours(2);
    store
        .agent_heartbeat("quiet", "1.0", 0, two_hours_ago)
        .await
        .unwrap();
    store.agent_heartbeat("busy", "1.0", 7, now).await.unwrap();
    store
        .agent_heartbeat("gone", "1.0", 3, two_hours_ago)
        .await
        .unwrap();
    store.revoke_agent("gone", now, None).await.unwrap();

    let (silent, dropping) = agent_trouble(store.as_ref(), now - Duration::hours(1))
        .await
        .unwrap();
    let mut silent: Vec<&str> = silent.iter().map(|a| a.host_name.as_str()).collect();
    silent.sort_unstable();
    assert_eq!(silent, ["pc-never", "pc-quiet"]);
    let dropping: Vec<(&str, i64)> = dropping
        .iter()
        .map(|a| (a.host_name.as_str(), a.dropped_records))
        .collect();
    assert_eq!(dropping, [("pc-busy", 7)]);
}

/// The trend samples a week apart, each the newest snapshot on or before its day, oldest
/// first; a week with no snapshot yet is left out.
async fn the_trend_takes_the_newest_snapshot_of_each_week(backend: Backend) {
    use tally_core::history::Snapshot;
    let dir = tempfile::tempdir().unwrap();
    let url = backend.url(&dir.path().join("t.db"));
    let store: Arc<dyn Store> = tally_store::open(&url).await.unwrap();
    let service = Service::new(store.clone(), SiteCode::parse("S01").unwrap());
    let row =
        serde_json::from_value(serde_json::json!({"name": "Office", "metric": "installations"}));
    let now = Utc::now();
    let app = licensing::put_application(&service, "ann", &row.unwrap(), now)
        .await
        .unwrap();
    let today = now.date_naive();
    for (back, status, shortfall, surplus) in [
        (14, "under_licensed", 2, 0),
        (9, "over_licensed", 0, 3),
        (0, "compliant", 0, 0),
    ] {
        let day = today - Duration::days(back);
        let snapshot = Snapshot {
            day,
            application_id: app.application.id,
            required: 5,
            owned: 5 - shortfall + surplus,
            covered: 5 - shortfall,
            shortfall,
            surplus,
            status: status.into(),
        };
        store.put_snapshots(day, &[snapshot]).await.unwrap();
    }
    let trend = position_trend(store.as_ref(), today, &[], (91, 7))
        .await
        .unwrap();
    let seen: Vec<(i64, usize, usize)> = trend
        .iter()
        .map(|f| {
            (
                (today - f.day).num_days(),
                f.under_licensed,
                f.over_licensed,
            )
        })
        .collect();
    assert_eq!(seen, [(14, 1, 0), (9, 0, 1), (0, 0, 0)]);
    assert!(
        trend.iter().all(|f| f.shortfall_cost.is_empty()),
        "no price known"
    );
}
