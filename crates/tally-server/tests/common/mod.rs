//! A real server on a real database — a SQLite file or a fresh PostgreSQL database, one test
//! body run on each (`each_backend!`) — bound to a free loopback port, with an admin and an
//! auditor token.

#![allow(dead_code)]

#[path = "../../../tally-store/tests/common/pgdb.rs"]
mod pgdb;

pub mod json;

use std::sync::Arc;

use serde_json::{json, Value};
use tally_core::{Role, Site, SiteCode};
use tally_server::config::Limits;
use tally_server::{auth, AppState};
use tally_store::prelude::*;

/// The PostgreSQL server's admin URL, for tests that act on it as its administrator would.
#[allow(unused_imports)]
pub use pgdb::admin_url;
pub use pgdb::{Backend, PgDb};

pub struct TestServer {
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub url: String,
    pub admin: String,
    pub auditor: String,
    /// Where the `write_reports` task writes.
    pub reports_dir: std::path::PathBuf,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    _dir: tempfile::TempDir,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Last, so it is dropped after the store; dropping it drops a PostgreSQL database (its
    /// open connections with it).
    _backend: Backend,
}

/// Opens (creating and migrating) the backend's database, SQLite's in `dir`.
pub async fn open_store(backend: &Backend, dir: &std::path::Path) -> Arc<dyn Store> {
    tally_store::open(&backend.url(&dir.join("t.db")))
        .await
        .unwrap()
}

pub async fn start(backend: Backend) -> TestServer {
    start_with_limits(backend, Limits::default()).await
}

/// [`start`], with request limits other than the defaults.
pub async fn start_with_limits(backend: Backend, limits: Limits) -> TestServer {
    start_configured(backend, limits, None, None).await
}

/// [`start`], serving `/metrics` to `metrics_token`'s bearer.
pub async fn start_with_metrics(backend: Backend, metrics_token: &str) -> TestServer {
    start_configured(backend, Limits::default(), None, Some(metrics_token)).await
}

/// [`start`], storing account and full names as pseudonyms under `key`.
pub async fn start_pseudonymising(backend: Backend, key: [u8; 32]) -> TestServer {
    let pseudonyms = tally_service::privacy::Pseudonyms::new(key);
    start_configured(backend, Limits::default(), Some(pseudonyms), None).await
}

async fn start_configured(
    backend: Backend,
    limits: Limits,
    pseudonyms: Option<tally_service::privacy::Pseudonyms>,
    metrics_token: Option<&str>,
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&backend, dir.path()).await;
    store
        .put_site(&Site::central(SiteCode::parse("S01").unwrap(), "Test"))
        .await
        .unwrap();
    let mut tokens = Vec::new();
    for role in [Role::Admin, Role::Auditor] {
        let (token, hash) = auth::generate_token();
        store
            .create_operator_token(role.as_str(), role, &hash, chrono::Utc::now(), None)
            .await
            .unwrap();
        tokens.push(token);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let reports_dir = dir.path().join("reports");
    let mut service = tally_service::Service::new(store.clone(), SiteCode::parse("S01").unwrap())
        .with_reports(tally_server::ReportOutput {
            dir: Some(reports_dir.clone()),
            scheduled: tally_report::ScheduledReport::DEFAULTS
                .iter()
                .map(|r| tally_report::ScheduledReport::parse(r).unwrap())
                .collect(),
        });
    if let Some(p) = pseudonyms {
        service = service.with_pseudonyms(p);
    }
    let mut state = AppState::with_service(service);
    if let Some(token) = metrics_token {
        state = state.with_metrics_token(token);
    }
    let task = tokio::spawn(async move {
        tally_server::serve(listener, state, &limits, async {
            let _ = rx.await;
        })
        .await
    });
    TestServer {
        client: reqwest::Client::new(),
        store,
        url,
        auditor: tokens.pop().unwrap(),
        admin: tokens.pop().unwrap(),
        reports_dir,
        backend: backend.name(),
        _dir: dir,
        _backend: backend,
        stop: Some(tx),
        task,
    }
}

/// [`start`], with the rule `Code` for the file `code`, the program [`record`] reports.
pub async fn start_with_code_rule(backend: Backend) -> TestServer {
    let server = start(backend).await;
    let rule = json!({"name": "Code", "file_name": "code"});
    let (status, body) = server
        .post("/api/v1/rules", Some(&server.admin), rule)
        .await;
    assert_eq!(status, 201, "{body}");
    server
}

impl TestServer {
    /// The server's database URL, for tests that act on it as another replica would.
    pub fn database_url(&self) -> String {
        self._backend.url(&self._dir.path().join("t.db"))
    }

    /// Executes `sql` on the server's database behind its back, as an operator's mistake or
    /// another release would.
    pub async fn execute_behind(&self, sql: &str) {
        self._backend.execute(&self.database_url(), sql).await
    }

    /// Imports `batch` into the store as `tally import` on the server's site S01 would at
    /// `at`: how tests lay down an estate or licenses dated in the past.
    pub async fn import(
        &self,
        batch: &tally_core::import::Batch,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        let site = SiteCode::parse("S01").unwrap();
        self.store
            .import(batch, &site, at, &|_| {}, None)
            .await
            .unwrap();
    }

    /// Sends a request with an optional bearer credential and JSON body; returns status and
    /// body (Null when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, auth: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, Some(auth), None)
            .await
    }

    pub async fn post(&self, path: &str, auth: Option<&str>, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, auth, Some(body))
            .await
    }

    /// Posts `body` with the admin's token: what most changes in the tests are.
    pub async fn post_as_admin(&self, path: &str, body: Value) -> (u16, Value) {
        self.post(path, Some(&self.admin), body).await
    }

    /// Posts `body` with the auditor's token, which may read but not change.
    pub async fn post_as_auditor(&self, path: &str, body: Value) -> (u16, Value) {
        self.post(path, Some(&self.auditor), body).await
    }

    /// Runs the maintenance task `name` now, as an admin asks for it.
    pub async fn run_task(&self, name: &str) -> (u16, Value) {
        let path = format!("/api/v1/tasks/{name}/run");
        self.call(reqwest::Method::POST, &path, Some(&self.admin), None)
            .await
    }

    /// Uploads a usage batch with agent credentials.
    pub async fn upload(&self, creds: &str, batch: Value) -> (u16, Value) {
        self.post("/api/v1/agent/usage", Some(creds), batch).await
    }

    /// Creates an enrolment token and enrols an agent; returns its credentials and device id.
    pub async fn enroll(&self, host: &str) -> (String, i64) {
        let (status, token) = self
            .post_as_admin("/api/v1/enrollment-tokens", json!({"name": host}))
            .await;
        assert_eq!(status, 201, "{token}");
        let (status, enrolled) = self
            .post(
                "/api/v1/agent/enroll",
                None,
                serde_json::json!({"enrollment_token": token["token"], "host_name": host}),
            )
            .await;
        assert_eq!(status, 200, "{enrolled}");
        (
            agent_creds(&enrolled),
            enrolled["device_id"].as_i64().unwrap(),
        )
    }
}

/// The bearer credential (`id.secret`) of the agent an enrolment answer describes.
pub fn agent_creds(enrolled: &Value) -> String {
    format!(
        "{}.{}",
        enrolled["agent_id"].as_str().unwrap(),
        enrolled["agent_secret"].as_str().unwrap()
    )
}

/// A usage record of the program `code` (rule file name `code`), as an agent uploads it.
pub fn record(id: &str, account: &str, offset: i32, start: &str, end: &str) -> Value {
    json!({
        "meter_data_id": id,
        "file": {"file_name": "code", "original_file_name": "code", "version": "1.95.0",
                 "product_name": "Code", "publisher": "Microsoft", "language": 65535},
        "user": {"account": account},
        "start_time": start, "start_time_offset": offset,
        "end_time": end, "end_time_offset": offset,
        "started": true, "still_running": false,
        "start_not_captured": false, "end_not_captured": false, "in_ts_session": false
    })
}

pub async fn upload(server: &TestServer, creds: &str, batch: &str, records: Vec<Value>) {
    let (status, body) = server
        .upload(creds, json!({"batch_id": batch, "records": records}))
        .await;
    assert_eq!(status, 200, "{body}");
}

pub async fn summarise(server: &TestServer) {
    for task in ["summarize_file_usage", "summarize_monthly_usage"] {
        let (status, state) = server.run_task(task).await;
        assert_eq!(status, 200, "{state}");
        assert_eq!(state["last_error"], Value::Null, "{state}");
        assert_eq!(state["pending_records"], 0, "{state}");
    }
}
