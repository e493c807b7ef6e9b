//! The server over real HTTP on a real SQLite file.

use std::sync::Arc;

use tally_core::{Role, SiteCode};
use tally_server::config::Limits;
use tally_server::{auth, AppState};
use tally_store::{SqliteStore, Store};

struct TestServer {
    url: String,
    admin: String,
    auditor: String,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
    let mut tokens = Vec::new();
    for role in [Role::Admin, Role::Auditor] {
        let (token, hash) = auth::generate_token();
        store
            .create_operator_token(role.as_str(), role, &hash, chrono::Utc::now())
            .await
            .unwrap();
        tokens.push(token);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = AppState {
        store,
        site: SiteCode::parse("S01").unwrap(),
    };
    let task = tokio::spawn(async move {
        tally_server::serve(listener, state, &Limits::default(), async {
            let _ = rx.await;
        })
        .await
    });
    TestServer {
        url,
        auditor: tokens.pop().unwrap(),
        admin: tokens.pop().unwrap(),
        _dir: dir,
        stop: Some(tx),
        task,
    }
}

#[tokio::test]
async fn healthz_reports_the_database() {
    let server = start().await;
    let body: serde_json::Value = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["site_code"], "S01");
    assert_eq!(body["schema_version"], 3);
}

#[tokio::test]
async fn openapi_document_describes_the_served_routes() {
    let server = start().await;
    let doc: serde_json::Value = reqwest::get(format!("{}/api/v1/openapi.json", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/api/v1/openapi.json",
        "/api/v1/whoami",
        "/api/v1/sites",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the document");
        let status = reqwest::get(format!("{}{path}", server.url))
            .await
            .unwrap()
            .status();
        assert_ne!(status, 404, "{path} is documented but not served");
    }
    assert!(paths["/api/v1/whoami"]["get"]["responses"]["401"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn tokens_authenticate_with_their_roles() {
    let server = start().await;
    let client = reqwest::Client::new();
    let whoami = format!("{}/api/v1/whoami", server.url);
    let resp = client.get(&whoami).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert!(body["message"].as_str().unwrap().contains("Bearer"));
    for (token, role) in [(&server.admin, "admin"), (&server.auditor, "auditor")] {
        let me: serde_json::Value = client
            .get(&whoami)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["role"], role);
    }
    let resp = client
        .get(&whoami)
        .header("Authorization", "Basic x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn graceful_shutdown_finishes_the_server() {
    let mut server = start().await;
    server.stop.take().unwrap().send(()).unwrap();
    server.task.await.unwrap().unwrap();
    assert!(reqwest::get(format!("{}/healthz", server.url))
        .await
        .is_err());
}
