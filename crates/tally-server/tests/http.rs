//! The server over real HTTP on a real database, SQLite and PostgreSQL.

mod common;

use common::json::assert_message_has;
use common::{start, Backend};

each_backend!(async
    healthz_reports_the_database,
    openapi_document_describes_the_served_routes,
    tokens_authenticate_with_their_roles,
    graceful_shutdown_finishes_the_server,
);

/// GETs `url` without credentials and parses its JSON answer.
async fn get_json(url: String) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn healthz_reports_the_database(backend: Backend) {
    let server = start(backend).await;
    let body = get_json(format!("{}/healthz", server.url)).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["site_code"], "S01");
    assert_eq!(
        body["database"], server.backend,
        "the server runs on the backend asked for"
    );
    // Migrated to the newest schema this binary ships: the highest migration number, per
    // backend (numbers may skip while branches each add one).
    let shipped = std::fs::read_dir(format!(
        "{}/../tally-store/migrations/{}",
        env!("CARGO_MANIFEST_DIR"),
        server.backend
    ))
    .unwrap()
    .filter_map(|f| {
        f.unwrap()
            .file_name()
            .to_str()?
            .get(..4)?
            .parse::<i64>()
            .ok()
    })
    .max()
    .unwrap();
    assert_eq!(body["schema_version"], shipped);
}

async fn openapi_document_describes_the_served_routes(backend: Backend) {
    let server = start(backend).await;
    let doc = get_json(format!("{}/api/v1/openapi.json", server.url)).await;
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

async fn tokens_authenticate_with_their_roles(backend: Backend) {
    let server = start(backend).await;
    let client = reqwest::Client::new();
    let whoami = format!("{}/api/v1/whoami", server.url);
    let resp = client.get(&whoami).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert_message_has(&body, "Bearer");
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

async fn graceful_shutdown_finishes_the_server(backend: Backend) {
    let mut server = start(backend).await;
    server.stop.take().unwrap().send(()).unwrap();
    server.task.await.unwrap().unwrap();
    assert!(reqwest::get(format!("{}/healthz", server.url))
        .await
        .is_err());
}
