//! Privacy by design: one person forgotten on request, their usage still counted; with
//! pseudonymisation on, no plain account or full name reaches the database, and an admin can
//! resolve one pseudonym, audit-logged.

mod common;

use common::{record, start_pseudonymising, start_with_code_rule, upload, Backend, TestServer};
use serde_json::{json, Value};

each_backend!(async
    forgetting_a_person_erases_their_names_and_keeps_their_usage,
    with_pseudonyms_no_plain_name_is_stored_and_one_can_be_resolved,
);

/// As a Linux agent names a user: the same in its usage and in its inventory.
const ACCOUNT: &str = "zelda.plainname";
const FULL_NAME: &str = "Zelda Plainname";

/// An inventory listing the person's local account beside a system one.
fn inventory() -> Value {
    json!({"hash": "h1", "os": "Debian 12",
           "hardware": {"cpu_model": "Xeon", "sockets": 1, "cores": 4, "threads": 8, "is_virtual": false},
           "accounts": [
               {"name": ACCOUNT, "uid": 1000, "full_name": FULL_NAME,
                "shell": "/bin/bash", "service_account": false},
               {"name": "root", "uid": 0, "shell": "/bin/bash", "service_account": true,
                "reason": "system uid"}]})
}

/// An agent that reported the person's usage and its device's inventory.
async fn reported(server: &TestServer) -> i64 {
    let (creds, device) = server.enroll("pc1").await;
    let mut r = record(
        "r1",
        ACCOUNT,
        60,
        "2026-11-02T08:00:00Z",
        "2026-11-02T09:00:00Z",
    );
    r["user"]["full_name"] = json!(FULL_NAME);
    upload(server, &creds, "b1", vec![r]).await;
    let (status, body) = server
        .post("/api/v1/agent/inventory", Some(&creds), inventory())
        .await;
    assert_eq!(status, 200, "{body}");
    device
}

async fn users(server: &TestServer) -> Vec<Value> {
    server
        .get("/api/v1/users", &server.admin)
        .await
        .1
        .as_array()
        .unwrap()
        .clone()
}

async fn local_accounts(server: &TestServer, device: i64) -> Vec<String> {
    let path = format!("/api/v1/devices/{device}/inventory");
    let (status, inv) = server.get(&path, &server.admin).await;
    assert_eq!(status, 200, "{inv}");
    inv["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

async fn audit_text(server: &TestServer) -> String {
    server
        .get("/api/v1/audit", &server.admin)
        .await
        .1
        .to_string()
}

async fn forgetting_a_person_erases_their_names_and_keeps_their_usage(backend: Backend) {
    let server = start_with_code_rule(backend).await;
    let device = reported(&server).await;
    let (_, before) = server.get("/api/v1/usage", &server.admin).await;
    let forget = json!({"account": ACCOUNT});
    let (status, body) = server
        .post_as_auditor("/api/v1/users/forget", forget.clone())
        .await;
    assert_eq!(status, 403, "auditors change nothing: {body}");
    let (status, body) = server
        .post_as_admin("/api/v1/users/forget", forget.clone())
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["user_id"].as_i64().expect("the user was found");

    let users = users(&server).await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["account"], format!("forgotten-{id}"));
    assert_eq!(users[0]["full_name"], Value::Null);
    // The usage stays, with the anonymous user: licenses per user still count this person.
    let (_, after) = server.get("/api/v1/usage", &server.admin).await;
    assert_eq!(
        after, before,
        "usage is kept, attributed to the same user id"
    );
    assert_eq!(after[0]["user_id"], id, "{after}");
    let accounts = local_accounts(&server, device).await;
    assert_eq!(accounts, ["root"], "the person's local account is erased");
    let audit = audit_text(&server).await;
    assert!(audit.contains("user.forget"), "{audit}");
    assert!(
        !audit.contains("zelda"),
        "the audit log keeps no name: {audit}"
    );
    let (status, body) = server.post_as_admin("/api/v1/users/forget", forget).await;
    assert_eq!(status, 404, "nothing left to forget: {body}");
}

async fn with_pseudonyms_no_plain_name_is_stored_and_one_can_be_resolved(backend: Backend) {
    let server = start_pseudonymising(backend, [42; 32]).await;
    let rule = json!({"name": "Code", "file_name": "code"});
    assert_eq!(server.post_as_admin("/api/v1/rules", rule).await.0, 201);
    let device = reported(&server).await;

    let users = users(&server).await;
    let pseudonym = users[0]["account"].as_str().unwrap().to_string();
    assert!(pseudonym.starts_with("pseu-"), "{users:?}");
    let full = users[0]["full_name"].as_str().unwrap();
    assert!(full.starts_with("pseu-") && full != pseudonym, "{users:?}");
    let accounts = local_accounts(&server, device).await;
    assert_eq!(accounts.len(), 2);
    assert!(
        accounts.iter().all(|a| a.starts_with("pseu-")),
        "{accounts:?}"
    );
    if server.backend == "sqlite" {
        assert_no_plain_names_in(&server);
    }

    let resolve = json!({"pseudonym": pseudonym});
    let (status, _) = server
        .post_as_auditor("/api/v1/users/resolve", resolve.clone())
        .await;
    assert_eq!(status, 403);
    let (status, body) = server.post_as_admin("/api/v1/users/resolve", resolve).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["account"], ACCOUNT);
    let audit = audit_text(&server).await;
    assert!(
        audit.contains("user.resolve_pseudonym") && audit.contains(&pseudonym),
        "{audit}"
    );
    let (status, body) = server
        .post_as_admin("/api/v1/users/resolve", json!({"pseudonym": "pseu-00"}))
        .await;
    assert_eq!(status, 400, "{body}");

    // Forgetting takes the plain name the person gives.
    let (status, body) = server
        .post_as_admin("/api/v1/users/forget", json!({"account": ACCOUNT}))
        .await;
    assert_eq!(status, 200, "{body}");
    // A name stored in plain before the site pseudonymised is erased too.
    let old = server
        .store
        .upsert_user("earlier.plainname", None)
        .await
        .unwrap();
    let forget = json!({"account": "earlier.plainname"});
    let (status, body) = server.post_as_admin("/api/v1/users/forget", forget).await;
    assert_eq!(
        (status, body["user_id"].as_i64()),
        (200, Some(old)),
        "{body}"
    );
}

/// Reads every file of the SQLite database (the main file, its WAL and shared memory) for the
/// person's names, in any case.
fn assert_no_plain_names_in(server: &TestServer) {
    let url = server.database_url();
    let path = url.trim_start_matches("sqlite://");
    let path = path.split('?').next().unwrap();
    let mut read = 0;
    for suffix in ["", "-wal", "-shm"] {
        let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) else {
            continue;
        };
        read += bytes.len();
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        for name in ["zelda", "plainname"] {
            assert!(!text.contains(name), "{name:?} found in {path}{suffix}");
        }
    }
    assert!(read > 0, "the database files were read");
}
