//! `tally bench fleet` offers a small fleet's load (200 agents, time compressed to a 2-second
//! cycle) over real HTTP on each backend: every kind of request is answered without an
//! error, and every record the server acknowledged is in the database.

mod common;

use std::process::Command;

use common::Backend;
use serde_json::Value;
use sqlx::Connection;

each_backend!(async a_small_fleet_is_served_and_every_acknowledged_record_stored);

/// Usage records in the database, counted behind the bench's back.
async fn records_in(backend: &Backend, url: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM usage_records";
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
        Backend::Postgres(_) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
    }
}

async fn a_small_fleet_is_served_and_every_acknowledged_record_stored(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.url(&dir.path().join("fleet.db"));
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["bench", "fleet", "--agents", "200", "--cycle-secs", "2"])
        .args(["--minutes", "0.1", "--json", "--database-url", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["backend"], backend.name(), "{text}");
    assert_eq!(report["agents"], 200, "{text}");
    // At a 2 s cycle over 6 s, each kind is due at least a few times (inventories, daily at
    // the default cadence, every 192 s here: 200 × 6 / 192 ≈ 7).
    for kind in report["kinds"].as_array().unwrap() {
        let n = |field: &str| kind[field].as_u64().unwrap();
        assert!(n("ok") > 0, "{kind}");
        assert_eq!(kind["errors"], serde_json::json!({}), "{kind}");
        assert_eq!(n("offered"), n("sent") + n("backlog"), "{kind}");
        let ms = |field: &str| kind[field].as_f64().unwrap();
        assert!(
            ms("p50_ms") <= ms("p99_ms") && ms("p99_ms") <= ms("max_ms"),
            "{kind}"
        );
    }
    assert!(report["total"]["achieved_per_sec"].as_f64().unwrap() > 0.0);
    let records = &report["records"];
    let stored = records["stored"].as_i64().unwrap();
    assert!(stored > 0, "{text}");
    assert_eq!(records["counted"].as_i64().unwrap(), stored, "{text}");
    assert_eq!(records_in(&backend, &url).await, stored, "{text}");
}
