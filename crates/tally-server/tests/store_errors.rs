//! Store failures answer by their kind: a change that clashes with the stored data is a 409
//! that says what clashed, not a 503 "storage unavailable" that sends the operator looking for
//! an outage.
//!
//! The clashes come from another operator's change landing between a handler's checks and its
//! write (on PostgreSQL, typically another replica). A trigger on the server's SQLite file makes
//! that other change at exactly that moment, so the race is the same every run.

mod common;

use serde_json::json;
use sqlx::Connection;
use tally_core::import::{Batch, OrgNodeRow, Origin};

/// Runs `sql` on the server's database from a connection of its own.
async fn on_database(server: &common::TestServer, sql: &str) {
    let url = format!("sqlite://{}", server.db_path().display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(sql).execute(&mut conn).await.unwrap();
}

/// Org nodes come from imports; this one adds a single node.
async fn add_org_node(server: &common::TestServer, name: &str) {
    let node = OrgNodeRow {
        name: name.into(),
        parent: None,
    };
    let batch = Batch {
        org_nodes: vec![(Origin::default(), node)],
        ..Default::default()
    };
    let site = tally_core::SiteCode::parse("S01").unwrap();
    server
        .store
        .import(&batch, &site, chrono::Utc::now(), &|_| {})
        .await
        .unwrap();
}

#[tokio::test]
async fn a_license_for_an_application_deleted_meanwhile_is_a_conflict() {
    let server = common::start().await;
    let app = json!({"name": "Chat", "metric": "installations"});
    let (status, body) = server
        .post("/api/v1/applications", Some(&server.admin), app)
        .await;
    assert_eq!(status, 200, "{body}");
    // Another operator deletes the application just as this license is written.
    on_database(
        &server,
        "CREATE TRIGGER deleted_meanwhile BEFORE INSERT ON licenses
         BEGIN DELETE FROM applications WHERE id = NEW.application_id; END",
    )
    .await;
    let license = json!({"application": "Chat", "metric": "installations", "quantity": 5,
        "assignment_type": "organization"});
    let (status, body) = server
        .post("/api/v1/licenses", Some(&server.admin), license)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains("FOREIGN KEY"), "{message}");
    assert!(server.store.licenses().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_org_rule_for_a_node_removed_meanwhile_is_a_conflict() {
    let server = common::start().await;
    add_org_node(&server, "Berlin").await;
    on_database(
        &server,
        "CREATE TRIGGER removed_meanwhile BEFORE INSERT ON org_rules
         BEGIN DELETE FROM org_nodes WHERE id = NEW.org_node; END",
    )
    .await;
    let rule = json!({"org_node": "Berlin", "host_name": "ber-*"});
    let (status, body) = server
        .post("/api/v1/org-rules", Some(&server.admin), rule)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");
    assert!(server.store.org_rules().await.unwrap().is_empty());
}

#[tokio::test]
async fn placing_a_device_on_a_node_removed_meanwhile_is_a_conflict() {
    let server = common::start().await;
    let (_, device) = server.enroll("pc1").await;
    add_org_node(&server, "Paris").await;
    on_database(
        &server,
        "CREATE TRIGGER removed_meanwhile BEFORE UPDATE OF org_node ON devices
         BEGIN DELETE FROM org_nodes WHERE id = NEW.org_node; END",
    )
    .await;
    let (status, body) = server
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/devices/{device}/org-node"),
            Some(&server.admin),
            Some(json!({"org_node": "Paris"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");
    let stored = server.store.device(device).await.unwrap().unwrap();
    assert_eq!(stored.org_node, None);
}
