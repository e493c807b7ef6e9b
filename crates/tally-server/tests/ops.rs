//! What operations ask a running server, over real HTTP on a real database: liveness and
//! readiness (`/healthz`, `/readyz`) and the Prometheus metrics (`/metrics`).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::json::assert_message_has;
use common::{record, start, start_with_metrics, Backend, TestServer};
use serde_json::{json, Value};

each_backend!(async
    readyz_is_ready_on_the_current_schema,
    readyz_names_a_schema_left_behind,
    metrics_move_with_real_ingest,
    metrics_are_off_without_a_token_file,
    the_grafana_dashboard_charts_what_the_server_exposes,
);

const METRICS_TOKEN: &str = "metrics-secret-for-tests";

/// One scrape: each sample (`name{labels}` as written) with its value, and the families the
/// `# TYPE` lines declare.
struct Scrape {
    samples: BTreeMap<String, f64>,
    families: BTreeSet<String>,
}

impl Scrape {
    /// A sample's value; 0 when absent (a counter not yet incremented is not written).
    fn get(&self, sample: &str) -> f64 {
        self.samples.get(sample).copied().unwrap_or(0.0)
    }
}

async fn scrape(server: &TestServer) -> Scrape {
    let resp = server
        .client
        .get(format!("{}/metrics", server.url))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let text = resp.text().await.unwrap();
    let mut scrape = Scrape {
        samples: BTreeMap::new(),
        families: BTreeSet::new(),
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            scrape.families.insert(name.to_string());
        } else if !line.starts_with('#') {
            let (sample, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            assert!(
                scrape.samples.insert(sample.into(), value).is_none(),
                "{line} twice"
            );
        }
    }
    scrape
}

/// Real uploads move the ingest counters, the latency histogram, the agents seen and the HTTP
/// answers; a real task run moves the task figures and empties its backlog.
async fn metrics_move_with_real_ingest(backend: Backend) {
    let server = start_with_metrics(backend, METRICS_TOKEN).await;
    for auth in [None, Some("wrong")] {
        let (status, body) = server
            .call(reqwest::Method::GET, "/metrics", auth, None)
            .await;
        assert_eq!(status, 401, "{body}");
    }
    let before = scrape(&server).await;
    assert_eq!(before.get("tally_ingest_records_total"), 0.0);
    assert_eq!(before.get("tally_agents_enrolled"), 0.0);
    assert_eq!(before.get("tally_database_up"), 1.0);
    assert!(before.get("tally_db_connections_max") >= 1.0);
    let (creds, _) = server.enroll("metered-host").await;
    let records: Vec<Value> = (0..3)
        .map(|i| {
            record(
                &format!("run-{i}"),
                "alice",
                0,
                "2026-03-01T09:00:00Z",
                "2026-03-01T09:30:00Z",
            )
        })
        .collect();
    let batch = json!({"batch_id": "b-1", "records": records});
    for _ in 0..2 {
        // The second time a replay: stored already, counted as duplicates.
        let (status, body) = server.upload(&creds, batch.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    let beat = json!({"agent_version": "0.1.0", "sent_at": chrono::Utc::now(),
        "spooled_records": 42});
    let (status, _) = server
        .post("/api/v1/agent/heartbeat", Some(&creds), beat)
        .await;
    assert_eq!(status, 204);
    let after = scrape(&server).await;
    assert_eq!(after.get("tally_agent_spooled_records"), 42.0);
    assert_eq!(after.get("tally_ingest_queue_records"), 0.0, "all written");
    assert_eq!(after.get("tally_sync_backlog_records"), 0.0, "no parent");
    assert_eq!(after.get("tally_ingest_records_total"), 3.0);
    assert_eq!(after.get("tally_ingest_batches_total"), 2.0);
    assert_eq!(
        after.get("tally_ingest_duplicates_total"),
        3.0,
        "the replay's records"
    );
    assert_eq!(after.get("tally_upload_duration_seconds_count"), 2.0);
    assert_eq!(
        after.get("tally_upload_duration_seconds_bucket{le=\"+Inf\"}"),
        2.0
    );
    assert!(after.get("tally_upload_duration_seconds_sum") > 0.0);
    assert_eq!(after.get("tally_agents_enrolled"), 1.0);
    assert_eq!(after.get("tally_agents_reporting"), 1.0);
    let ok = "tally_http_responses_total{status=\"200\"}";
    assert!(
        after.get(ok) >= before.get(ok) + 3.0,
        "uploads and the enrolment answered 200"
    );
    assert_eq!(after.get("tally_http_responses_total{status=\"401\"}"), 2.0);
    let backlog = "tally_task_backlog_records{task=\"summarize_monthly_usage\"}";
    assert_eq!(after.get(backlog), 3.0);
    let (status, body) = server.run_task("summarize_monthly_usage").await;
    assert_eq!(status, 200, "{body}");
    let ran = scrape(&server).await;
    assert_eq!(ran.get(backlog), 0.0);
    let runs = "tally_task_runs_total{task=\"summarize_monthly_usage\",outcome=\"ok\"}";
    assert_eq!(ran.get(runs), 1.0);
    let last = "tally_task_last_run_timestamp_seconds{task=\"summarize_monthly_usage\"}";
    assert!(ran.get(last) > 0.0);
}

async fn metrics_are_off_without_a_token_file(backend: Backend) {
    let server = start(backend).await;
    let (status, body) = server
        .call(reqwest::Method::GET, "/metrics", Some(METRICS_TOKEN), None)
        .await;
    assert_eq!(status, 404, "{body}");
    assert_message_has(&body, "metrics_token_file");
}

/// Every metric the dashboard in contrib/ queries is one the server exposes, and every family
/// the server exposes has a panel: the two cannot drift apart.
async fn the_grafana_dashboard_charts_what_the_server_exposes(backend: Backend) {
    let server = start_with_metrics(backend, METRICS_TOKEN).await;
    // Something in every labelled family, so each is written.
    let (status, _) = server.run_task("summarize_file_usage").await;
    assert_eq!(status, 200);
    let exposed = scrape(&server).await.families;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contrib/grafana/tally-dashboard.json"
    );
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            queried.extend(metric_names(expr));
        }
    }
    assert!(!queried.is_empty());
    for name in &queried {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| exposed.contains(*f)))
            .unwrap_or(name);
        assert!(
            exposed.contains(family),
            "the dashboard queries {name}, which the server does not expose"
        );
    }
    for family in &exposed {
        let charted = queried.iter().any(|q| q.starts_with(family.as_str()));
        assert!(
            charted || family == "tally_build_info",
            "no panel shows {family}"
        );
    }
}

/// The `tally_…` metric names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("tally_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// GETs `path` without credentials: status and JSON body.
async fn probe(server: &common::TestServer, path: &str) -> (u16, Value) {
    server.call(reqwest::Method::GET, path, None, None).await
}

async fn readyz_is_ready_on_the_current_schema(backend: Backend) {
    let server = start(backend).await;
    let (status, ready) = probe(&server, "/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], server.backend);
    let (_, health) = probe(&server, "/healthz").await;
    assert_eq!(ready["schema_version"], health["schema_version"]);
}

/// A database whose newest migration is gone (restored from an older backup, say) is not
/// ready, and the answer says what to do; the process is still alive.
async fn readyz_names_a_schema_left_behind(backend: Backend) {
    let server = start(backend).await;
    let newest =
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)";
    server.execute_behind(newest).await;
    let (status, body) = probe(&server, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable");
    assert_message_has(&body, "restart the server");
    let (status, health) = probe(&server, "/healthz").await;
    assert_eq!(status, 200, "liveness does not ask the database: {health}");
}

/// PostgreSQL gone (the database dropped under the server, its connections ended): `/readyz`
/// answers 503 saying the database is unreachable, `/healthz` still 200. SQLite has no such
/// outage while the process holds its file open; its readiness is tested by the schema above.
#[tokio::test]
async fn readyz_fails_while_postgres_is_gone() {
    let Some(db) = common::PgDb::create().await else {
        return;
    };
    let name = db.name.clone();
    let server = start(Backend::Postgres(db)).await;
    let (status, _) = probe(&server, "/readyz").await;
    assert_eq!(status, 200);
    let admin = common::admin_url();
    let drop = format!("DROP DATABASE {name} WITH (FORCE)");
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&drop).execute(&mut conn).await.unwrap();
    let (status, body) = probe(&server, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_message_has(&body, "database");
    let (status, _) = probe(&server, "/healthz").await;
    assert_eq!(status, 200);
}
