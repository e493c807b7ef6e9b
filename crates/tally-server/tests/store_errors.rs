//! Store failures answer by their kind: a change that clashes with the stored data is a 409
//! that says what clashed, not a 503 "storage unavailable" that sends the operator looking for
//! an outage.
//!
//! The clashes come from another operator's change landing between a handler's checks and its
//! write (on PostgreSQL, typically through another replica). A trigger on the server's database
//! makes that other change at exactly that moment, so the race is the same every run.
//!
//! A row that is not there answers 404 naming what is missing, whether the store says so by an
//! empty answer (no row with that id) or by its `NotFound` error (the row went between the
//! store's read and its write).

mod common;

use common::{start, Backend, TestServer};
use reqwest::Method;
use serde_json::json;
use sqlx::Connection;
use tally_core::device::NewDevice;
use tally_core::import::{Batch, OrgNodeRow, Origin};
use tally_core::DeviceStatus;

each_backend!(async
    a_device_deleted_while_its_status_changes_is_not_found_by_name,
    changes_to_rows_that_are_not_there_are_not_found_by_name,
    a_license_for_an_application_deleted_meanwhile_is_a_conflict,
    an_org_rule_for_a_node_removed_meanwhile_is_a_conflict,
    placing_a_device_on_a_node_removed_meanwhile_is_a_conflict,
);

/// Makes every `event` (`INSERT ON licenses`) first delete the rows `doomed` names
/// (`applications WHERE id = NEW.application_id`), as a concurrent change would.
async fn delete_first(server: &TestServer, event: &str, doomed: &str) {
    let url = server.database_url();
    if server.backend == "postgres" {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let function = format!(
            "CREATE FUNCTION meanwhile() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN DELETE FROM {doomed}; RETURN NEW; END $$"
        );
        sqlx::query(&function).execute(&mut conn).await.unwrap();
        let trigger = format!(
            "CREATE TRIGGER meanwhile BEFORE {event} FOR EACH ROW EXECUTE FUNCTION meanwhile()"
        );
        sqlx::query(&trigger).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let trigger =
            format!("CREATE TRIGGER meanwhile BEFORE {event} BEGIN DELETE FROM {doomed}; END");
        sqlx::query(&trigger).execute(&mut conn).await.unwrap();
    }
}

/// Org nodes come from imports; this one adds a single node.
async fn add_org_node(server: &TestServer, name: &str) {
    let node = OrgNodeRow {
        name: name.into(),
        parent: None,
    };
    let batch = Batch {
        org_nodes: vec![(Origin::default(), node)],
        ..Default::default()
    };
    server.import(&batch, chrono::Utc::now()).await;
}

async fn a_license_for_an_application_deleted_meanwhile_is_a_conflict(backend: Backend) {
    let server = start(backend).await;
    let app = json!({"name": "Chat", "metric": "installations"});
    let (status, body) = server.post_as_admin("/api/v1/applications", app).await;
    assert_eq!(status, 200, "{body}");
    let doomed = "applications WHERE id = NEW.application_id";
    delete_first(&server, "INSERT ON licenses", doomed).await;
    let license = json!({"application": "Chat", "metric": "installations", "quantity": 5,
        "assignment_type": "organization"});
    let (status, body) = server.post_as_admin("/api/v1/licenses", license).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");
    let message = body["message"].as_str().unwrap();
    match server.backend {
        "postgres" => assert!(message.contains("not present in table"), "{message}"),
        _ => assert!(message.contains("does not exist"), "{message}"),
    }
    assert!(server.store.licenses().await.unwrap().is_empty());
}

async fn an_org_rule_for_a_node_removed_meanwhile_is_a_conflict(backend: Backend) {
    let server = start(backend).await;
    add_org_node(&server, "Berlin").await;
    let doomed = "org_nodes WHERE id = NEW.org_node";
    delete_first(&server, "INSERT ON org_rules", doomed).await;
    let rule = json!({"org_node": "Berlin", "host_name": "ber-*"});
    let (status, body) = server.post_as_admin("/api/v1/org-rules", rule).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");
    assert!(server.store.org_rules().await.unwrap().is_empty());
}

async fn placing_a_device_on_a_node_removed_meanwhile_is_a_conflict(backend: Backend) {
    let server = start(backend).await;
    let (_, device) = server.enroll("pc1").await;
    add_org_node(&server, "Paris").await;
    let doomed = "org_nodes WHERE id = NEW.org_node";
    delete_first(&server, "UPDATE OF org_node ON devices", doomed).await;
    let (status, body) = server
        .call(
            Method::PUT,
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

async fn a_device_deleted_while_its_status_changes_is_not_found_by_name(backend: Backend) {
    let server = start(backend).await;
    let new = NewDevice::named(&tally_core::SiteCode::parse("S01").unwrap(), "pc1");
    let device = server.store.create_device(&new, chrono::Utc::now()).await;
    let id = device.unwrap().id;
    // The store reads the old status, notes it in status_changes, then updates the row: the
    // device goes in between, so the store's update finds no row (its NotFound error).
    let doomed = "devices WHERE id = NEW.subject_id";
    delete_first(&server, "INSERT ON status_changes", doomed).await;
    let path = format!("/api/v1/devices/{id}/status");
    let retire = Some(json!({"status": "retired"}));
    let (status, body) = server
        .call(Method::PUT, &path, Some(&server.admin), retire)
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found");
    let message = body["message"].as_str().unwrap();
    assert_eq!(message, format!("no device {id}; see tally devices"));
    // The change and the deletion went back together; no entry was written.
    let stored = server.store.device(id).await.unwrap().unwrap();
    assert_eq!(stored.status, DeviceStatus::Active);
    let (_, audit) = server.get("/api/v1/audit", &server.admin).await;
    assert!(!audit.to_string().contains("device.status"), "{audit}");
}

async fn changes_to_rows_that_are_not_there_are_not_found_by_name(backend: Backend) {
    let server = start(backend).await;
    let (_, audit_before) = server.get("/api/v1/audit", &server.admin).await;
    let rule = json!({"name": "Vim", "file_name": "vim"});
    let none = json!({"org_node": null});
    let calls = [
        (
            Method::PUT,
            "/api/v1/rules/9999",
            Some(rule),
            "no rule 9999",
        ),
        (Method::DELETE, "/api/v1/rules/9999", None, "no rule 9999"),
        (
            Method::PATCH,
            "/api/v1/licenses/9999",
            Some(json!({})),
            "no license 9999",
        ),
        (
            Method::DELETE,
            "/api/v1/licenses/9999",
            None,
            "no license 9999",
        ),
        (
            Method::DELETE,
            "/api/v1/applications/9999",
            None,
            "no application 9999",
        ),
        (
            Method::DELETE,
            "/api/v1/org-rules/9999",
            None,
            "no org rule 9999",
        ),
        (
            Method::PUT,
            "/api/v1/devices/9999/org-node",
            Some(none.clone()),
            "no device 9999",
        ),
        (
            Method::PUT,
            "/api/v1/users/9999/org-node",
            Some(none),
            "no user 9999",
        ),
        (
            Method::PUT,
            "/api/v1/devices/9999/status",
            Some(json!({"status": "retired"})),
            "no device 9999",
        ),
        (
            Method::GET,
            "/api/v1/devices/9999/inventory",
            None,
            "no device 9999",
        ),
        (
            Method::DELETE,
            "/api/v1/tokens/9999",
            None,
            "no live token with id 9999",
        ),
        (
            Method::DELETE,
            "/api/v1/enrollment-tokens/9999",
            None,
            "no live enrolment token with id 9999",
        ),
        (
            Method::DELETE,
            "/api/v1/agents/ag_gone",
            None,
            "no live agent ag_gone",
        ),
    ];
    for (method, path, body, missing) in calls {
        let call = format!("{method} {path}");
        let (status, answer) = server.call(method, path, Some(&server.admin), body).await;
        assert_eq!(status, 404, "{call}: {answer}");
        assert_eq!(answer["error"], "not_found", "{call}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.starts_with(missing), "{call}: {message}");
    }
    let (_, audit_after) = server.get("/api/v1/audit", &server.admin).await;
    assert_eq!(
        audit_after, audit_before,
        "a change that found no row writes no entry"
    );
}
