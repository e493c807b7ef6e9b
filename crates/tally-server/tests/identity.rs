//! Who is who, as agents report it (issue 16, items 3 and 4): a machine keeps its device when
//! it enrols again; devices are re-statused and merged over the API; the inventory's
//! classification of system accounts reaches the users usage is attributed to, and an admin's
//! choice wins and survives new inventories.

mod common;

use common::json::{entry, strings};
use common::{agent_creds, record, start, start_with_code_rule, upload, Backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

each_backend!(async
    enrolling_again_from_the_same_machine_keeps_one_device,
    devices_are_retired_and_merged_and_demand_no_longer_doubles,
    system_accounts_are_not_licensable_users_unless_an_admin_says_so,
);

/// Enrols an agent as [`TestServer::enroll`] does, saying what identifies its machine.
async fn enroll_as(server: &TestServer, host: &str, identity: Value) -> (u16, Value) {
    let (status, token) = server
        .post_as_admin("/api/v1/enrollment-tokens", json!({"name": host}))
        .await;
    assert_eq!(status, 201, "{token}");
    let mut body = json!({"enrollment_token": token["token"], "host_name": host});
    for (k, v) in identity.as_object().unwrap() {
        body[k] = v.clone();
    }
    server.post("/api/v1/agent/enroll", None, body).await
}

async fn devices(server: &TestServer) -> Vec<Value> {
    let (status, list) = server.get("/api/v1/devices", &server.auditor).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

async fn heartbeat(server: &TestServer, creds: &str) -> u16 {
    let body = json!({"agent_version": "t", "sent_at": chrono::Utc::now()});
    server
        .post("/api/v1/agent/heartbeat", Some(creds), body)
        .await
        .0
}

async fn enrolling_again_from_the_same_machine_keeps_one_device(backend: Backend) {
    let server = start(backend).await;
    let machine = json!({"machine_id": "4f1c0a9e2b", "serial": "To Be Filled By O.E.M."});
    let (status, first) = enroll_as(&server, "vm", machine.clone()).await;
    assert_eq!(status, 200, "{first}");
    // Reinstalled with a fresh state directory: the same machine-id.
    let (status, second) = enroll_as(&server, "vm", machine).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second["device_id"], first["device_id"],
        "one machine, one device"
    );
    assert_eq!(devices(&server).await.len(), 1);
    // The first agent's credentials are superseded: revoked, so a copy still running stops.
    assert_eq!(heartbeat(&server, &agent_creds(&first)).await, 401);
    assert_eq!(heartbeat(&server, &agent_creds(&second)).await, 204);

    // Re-imaged: a new machine-id, the same real serial.
    let serial = json!({"machine_id": "aaaa", "serial": "PF2XYZ01"});
    let (_, pc) = enroll_as(&server, "pc1", serial).await;
    let reimaged = json!({"machine_id": "bbbb", "serial": "PF2XYZ01"});
    let (_, again) = enroll_as(&server, "pc1-new-name", reimaged).await;
    assert_eq!(again["device_id"], pc["device_id"]);
    let list = devices(&server).await;
    let pc1 = list.iter().find(|d| d["id"] == pc["device_id"]).unwrap();
    assert_eq!(
        pc1["host_name"], "pc1-new-name",
        "the device takes its new name"
    );
    assert_eq!(pc1["machine_id"], "bbbb");

    // A host name alone, a placeholder serial, or a clone's own serial make new devices.
    let (_, other) = enroll_as(&server, "vm", json!({})).await;
    let (_, placeholder) =
        enroll_as(&server, "x", json!({"serial": "To Be Filled By O.E.M."})).await;
    let clone = json!({"machine_id": "aaaa-clone", "serial": "OTHER"});
    let (_, cloned) = enroll_as(&server, "pc1", clone).await;
    let ids: std::collections::BTreeSet<i64> = [&first, &pc, &other, &placeholder, &cloned]
        .iter()
        .map(|e| e["device_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert_eq!(devices(&server).await.len(), 5);

    // The inventory keeps the machine-id, so an agent enrolled before it sent one is found.
    let (status, old) = enroll_as(&server, "old", json!({})).await;
    assert_eq!(status, 200);
    let inventory = json!({"hash": "h1", "hardware": {"machine_id": "0ld1d"}});
    let (status, body) = server
        .post(
            "/api/v1/agent/inventory",
            Some(&agent_creds(&old)),
            inventory,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, renewed) = enroll_as(&server, "old", json!({"machine_id": "0ld1d"})).await;
    assert_eq!(renewed["device_id"], old["device_id"]);
}

/// An inventory listing `packages`, with `hash` telling it from the last one.
fn inventory(hash: &str, packages: &[&str], accounts: Value) -> Value {
    let software: Vec<Value> = packages
        .iter()
        .map(|p| json!({"name": p, "version": "9.1", "publisher": "Vim", "executables": [p]}))
        .collect();
    json!({"hash": hash, "software": software, "accounts": accounts})
}

async fn position(server: &TestServer, app: &str) -> Value {
    let (status, p) = server
        .get(&format!("/api/v1/compliance?app={app}"), &server.auditor)
        .await;
    assert_eq!(status, 200, "{p}");
    p[0].clone()
}

async fn devices_are_retired_and_merged_and_demand_no_longer_doubles(backend: Backend) {
    let server = start_with_code_rule(backend).await;
    let app = json!({"name": "Vim", "metric": "installations", "software": "vim",
                     "software_publisher": "*", "software_version": "*"});
    let (status, body) = server.post_as_admin("/api/v1/applications", app).await;
    assert_eq!(status, 200, "{body}");
    // One machine enrolled twice by agents that said nothing about it (as before Tally
    // matched machines): two devices, each with the inventory and some usage.
    let (old, old_id) = server.enroll("vm").await;
    let (new, new_id) = server.enroll("vm").await;
    for (creds, hash) in [(&old, "h-old"), (&new, "h-new")] {
        let inv = inventory(hash, &["vim"], json!([]));
        let (status, body) = server
            .post("/api/v1/agent/inventory", Some(creds), inv)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let run = |id: &str, day: u32| {
        let start = format!("2026-11-{day:02}T08:00:00Z");
        let end = format!("2026-11-{day:02}T09:00:00Z");
        record(id, "ann", 0, &start, &end)
    };
    upload(&server, &old, "o1", vec![run("r1", 2)]).await;
    upload(&server, &new, "n1", vec![run("r2", 3)]).await;
    assert_eq!(position(&server, "Vim").await["required"], 2, "doubled");

    let admin = Some(server.admin.as_str());
    let srv = &server;
    let merge = |from: i64, into: i64| async move {
        let path = format!("/api/v1/devices/{from}/merge");
        srv.call(Method::POST, &path, admin, Some(json!({"into": into})))
            .await
    };
    assert_eq!(merge(old_id, old_id).await.0, 400, "not into itself");
    assert_eq!(merge(old_id, 9999).await.0, 404);
    let (status, auditor) = server
        .call(
            Method::POST,
            &format!("/api/v1/devices/{old_id}/merge"),
            Some(&server.auditor),
            Some(json!({"into": new_id})),
        )
        .await;
    assert_eq!(status, 403, "{auditor}");
    let (status, merged) = merge(old_id, new_id).await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(
        (
            &merged["usage_records"],
            &merged["installations"],
            &merged["agents"]
        ),
        (&json!(1), &json!(1), &json!(1)),
        "{merged}"
    );
    let list = devices(&server).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], new_id);
    assert_eq!(
        position(&server, "Vim").await["required"],
        1,
        "counted once"
    );
    // The merged device's usage records, read again after each change.
    let merged_usage = format!("/api/v1/usage?device_id={new_id}");
    let (_, usage) = server.get(&merged_usage, &server.auditor).await;
    assert_eq!(usage.as_array().unwrap().len(), 2, "{usage}");
    // The old agent now reports for the merged device.
    upload(&server, &old, "o2", vec![run("r3", 4)]).await;
    let (_, usage) = server.get(&merged_usage, &server.auditor).await;
    assert_eq!(usage.as_array().unwrap().len(), 3, "{usage}");

    // Retired over the API: no longer counted, audit-logged.
    let status_of = |status: &'static str| async move {
        let path = format!("/api/v1/devices/{new_id}/status");
        srv.call(Method::PUT, &path, admin, Some(json!({"status": status})))
            .await
    };
    assert_eq!(status_of("broken").await.0, 400);
    let (status, device) = status_of("retired").await;
    assert_eq!(
        (status, &device["status"]),
        (200, &json!("retired")),
        "{device}"
    );
    assert_eq!(position(&server, "Vim").await["required"], 0);
    let (status, _) = server
        .call(
            Method::PUT,
            "/api/v1/devices/9999/status",
            admin,
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(status, 404);
    let (_, audit) = server.get("/api/v1/audit", &server.admin).await;
    let actions = strings(&audit, "action");
    assert!(actions.contains(&"device.merge"), "{actions:?}");
    assert!(actions.contains(&"device.status"), "{actions:?}");
}

/// Local accounts as the agent classifies them.
fn accounts() -> Value {
    json!([
        {"name": "root", "uid": 0, "full_name": "root", "shell": "/bin/bash",
         "service_account": true, "reason": "uid 0 (system account)"},
        {"name": "alice", "uid": 1000, "full_name": "Alice Liddell", "shell": "/bin/bash",
         "service_account": false},
        {"name": "backup", "uid": 1001, "full_name": "Backup", "shell": "/bin/bash",
         "service_account": true, "reason": "user cannot change password"}
    ])
}

async fn user(server: &TestServer, account: &str) -> Value {
    let (_, users) = server.get("/api/v1/users", &server.auditor).await;
    entry(&users, "account", account).clone()
}

/// Records the usage sessions the users metric counts, then the position of "Code users".
async fn users_required(server: &TestServer) -> i64 {
    let (status, state) = server.run_task("record_usage_sessions").await;
    assert_eq!(
        (status, &state["last_error"]),
        (200, &Value::Null),
        "{state}"
    );
    position(server, "Code%20users").await["required"]
        .as_i64()
        .unwrap()
}

async fn set_service_account(server: &TestServer, account: &str, choice: &str) -> (u16, Value) {
    let body = json!({"account": account, "service_account": choice});
    server
        .post_as_admin("/api/v1/users/service-account", body)
        .await
}

async fn system_accounts_are_not_licensable_users_unless_an_admin_says_so(backend: Backend) {
    let server = start_with_code_rule(backend).await;
    let app = json!({"name": "Code users", "metric": "users", "metering_rule": "Code"});
    let (status, body) = server.post_as_admin("/api/v1/applications", app).await;
    assert_eq!(status, 200, "{body}");
    let (creds, _) = server.enroll("pc1").await;
    let now = chrono::Utc::now();
    let t = |h: i64| (now - chrono::Duration::hours(h)).to_rfc3339();
    // root runs the program before the inventory arrives; backup after it.
    upload(
        &server,
        &creds,
        "b1",
        vec![record("r1", "root", 0, &t(3), &t(2))],
    )
    .await;
    upload(
        &server,
        &creds,
        "b2",
        vec![record("r2", "alice", 0, &t(3), &t(2))],
    )
    .await;
    let inv = inventory("h1", &[], accounts());
    let (status, body) = server
        .post("/api/v1/agent/inventory", Some(&creds), inv)
        .await;
    assert_eq!(status, 200, "{body}");
    upload(
        &server,
        &creds,
        "b3",
        vec![record("r3", "backup", 0, &t(3), &t(2))],
    )
    .await;

    let root = user(&server, "root").await;
    assert_eq!(root["service_account"], true, "{root}");
    assert_eq!(
        root["service_account_reason"],
        "uid 0 (system account), from inventory of pc1"
    );
    let backup = user(&server, "backup").await;
    assert_eq!(backup["service_account"], true, "{backup}");
    assert_eq!(
        backup["service_account_reason"],
        "user cannot change password, from inventory of pc1"
    );
    let alice = user(&server, "alice").await;
    assert_eq!(alice["service_account"], false, "{alice}");
    assert_eq!(users_required(&server).await, 1, "alice only");

    // An admin says root is a person here: counted, and kept across a new inventory.
    let (status, body) = set_service_account(&server, "root", "no").await;
    assert_eq!(
        (status, &body["service_account"]),
        (200, &json!(false)),
        "{body}"
    );
    assert_eq!(body["service_account_set_by_admin"], false);
    let inv = inventory("h2", &["vim"], accounts());
    let (status, _) = server
        .post("/api/v1/agent/inventory", Some(&creds), inv)
        .await;
    assert_eq!(status, 200);
    assert_eq!(user(&server, "root").await["service_account"], false);
    assert_eq!(users_required(&server).await, 2, "alice and root");
    // And alice is a service account by the admin's word.
    set_service_account(&server, "alice", "yes").await;
    assert_eq!(users_required(&server).await, 1, "root only");
    // auto hands both back to the inventory.
    for account in ["root", "alice"] {
        let (status, body) = set_service_account(&server, account, "auto").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["service_account_set_by_admin"], Value::Null);
    }
    assert_eq!(users_required(&server).await, 1, "alice only");

    assert_eq!(
        set_service_account(&server, "nobody-here", "yes").await.0,
        404
    );
    assert_eq!(set_service_account(&server, "root", "maybe").await.0, 400);
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/users/service-account",
            Some(&server.auditor),
            Some(json!({"account": "root", "service_account": "yes"})),
        )
        .await;
    assert_eq!(status, 403);
}
