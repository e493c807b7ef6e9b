//! The agent API over HTTP: enrolment, policy with ETag, usage upload, heartbeat, and every
//! refusal path.

mod common;

use common::json::{assert_message_has, entry, strings};
use common::{agent_creds, start, Backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

each_backend!(async
    enrolment_tokens_limit_uses_and_revocation_locks_agents_out,
    usage_is_stored_once_and_a_replayed_batch_is_acknowledged_again,
    bad_uploads_are_refused_and_change_nothing,
    policy_carries_site_rules_with_an_etag,
    the_body_size_limit_answers_413,
    inventory_feeds_automatic_rules,
);

fn record(id: &str, start: &str, end: &str, started: bool, running: bool) -> Value {
    json!({
        "meter_data_id": id,
        "file": {"file_name": "code", "original_file_name": "code", "version": "1.95.0",
                 "product_name": "Code", "publisher": "Microsoft", "language": 65535},
        "user": {"account": "alice", "full_name": "Alice Liddell"},
        "start_time": start, "start_time_offset": 60,
        "end_time": end, "end_time_offset": 60,
        "started": started, "still_running": running,
        "start_not_captured": false, "end_not_captured": false, "in_ts_session": false
    })
}

fn three_cycles() -> Vec<Value> {
    vec![
        record(
            "m1",
            "2026-05-01T09:00:00Z",
            "2026-05-01T09:15:00Z",
            true,
            true,
        ),
        record(
            "m1",
            "2026-05-01T09:15:00Z",
            "2026-05-01T09:30:00Z",
            false,
            true,
        ),
        record(
            "m1",
            "2026-05-01T09:30:00Z",
            "2026-05-01T09:40:00Z",
            false,
            false,
        ),
    ]
}

async fn enrolment_tokens_limit_uses_and_revocation_locks_agents_out(backend: Backend) {
    let s = start(backend).await;
    let (status, token) = s
        .post_as_admin(
            "/api/v1/enrollment-tokens",
            json!({"name": "one", "max_uses": 1}),
        )
        .await;
    assert_eq!(status, 201);
    let enroll = json!({"enrollment_token": token["token"], "host_name": "pc1"});
    let (status, first) = s.post("/api/v1/agent/enroll", None, enroll.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(first["site_code"], "S01");
    let (status, body) = s.post("/api/v1/agent/enroll", None, enroll).await;
    assert_eq!(status, 401, "used up: {body}");
    assert_message_has(&body, "used up");
    let (status, _) = s
        .post(
            "/api/v1/agent/enroll",
            None,
            json!({"enrollment_token": token["token"]}),
        )
        .await;
    assert_eq!(status, 400, "host_name missing");

    let creds = agent_creds(&first);
    let beat = json!({"agent_version": "0.1.0", "sent_at": "2026-05-01T09:00:00Z"});
    let (status, _) = s
        .post("/api/v1/agent/heartbeat", Some(&creds), beat.clone())
        .await;
    assert_eq!(status, 204);
    let wrong = format!("{}.{}", first["agent_id"].as_str().unwrap(), "0".repeat(64));
    assert_eq!(
        s.post("/api/v1/agent/heartbeat", Some(&wrong), beat.clone())
            .await
            .0,
        401
    );
    assert_eq!(
        s.post("/api/v1/agent/heartbeat", None, beat.clone())
            .await
            .0,
        401
    );
    assert_eq!(
        s.post_as_admin("/api/v1/agent/heartbeat", beat.clone())
            .await
            .0,
        401,
        "operator tokens are not agent credentials"
    );

    let path = format!("/api/v1/agents/{}", first["agent_id"].as_str().unwrap());
    let (status, _) = s.call(Method::DELETE, &path, Some(&s.auditor), None).await;
    assert_eq!(status, 403, "auditors cannot revoke");
    let (status, _) = s.call(Method::DELETE, &path, Some(&s.admin), None).await;
    assert_eq!(status, 204);
    assert_eq!(
        s.post("/api/v1/agent/heartbeat", Some(&creds), beat)
            .await
            .0,
        401,
        "revoked agent"
    );
    let (status, _) = s.call(Method::DELETE, &path, Some(&s.admin), None).await;
    assert_eq!(status, 404);

    let (_, agents) = s.get("/api/v1/agents", &s.auditor).await;
    assert!(agents[0]["last_heartbeat"].is_string());
    let id = token["id"].as_i64().unwrap();
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/enrollment-tokens/{id}"),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, tokens) = s.get("/api/v1/enrollment-tokens", &s.admin).await;
    assert!(tokens[0]["revoked_at"].is_string());
    assert!(
        tokens[0].get("token").is_none(),
        "the secret is shown only at creation"
    );
}

async fn usage_is_stored_once_and_a_replayed_batch_is_acknowledged_again(backend: Backend) {
    let s = start(backend).await;
    let (creds, device) = s.enroll("pc1").await;
    let batch = json!({"batch_id": "b-1", "records": three_cycles()});
    let (status, ack) = s.upload(&creds, batch.clone()).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        (ack["stored"].as_u64(), ack["duplicates"].as_u64()),
        (Some(3), Some(0))
    );
    let (status, again) = s.upload(&creds, batch).await;
    assert_eq!(status, 200);
    assert_eq!(again, ack, "a retry gets the same acknowledgement");

    let (_, records) = s.get("/api/v1/usage", &s.auditor).await;
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r["device_id"] == device));
    assert!(records
        .iter()
        .all(|r| r["time_serial"] == records[0]["time_serial"]));
    let (_, runs) = s.get("/api/v1/runs", &s.auditor).await;
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["start_time"], "2026-05-01T09:00:00Z");
    assert_eq!(runs[0]["end_time"], "2026-05-01T09:40:00Z");
    assert_eq!(runs[0]["usage_seconds"], 40 * 60);
    assert_eq!(runs[0]["still_running"], false);
    let (_, users) = s.get("/api/v1/users", &s.auditor).await;
    assert_eq!(users[0]["account"], "alice");
    let (_, files) = s.get("/api/v1/files", &s.auditor).await;
    assert_eq!(files[0]["version"], "1.95.0");
}

async fn bad_uploads_are_refused_and_change_nothing(backend: Backend) {
    let s = start(backend).await;
    let (creds, device) = s.enroll("pc1").await;
    let (other_creds, other_device) = s.enroll("pc2").await;
    let mut records = three_cycles();
    records[1]["end_time"] = json!("2026-05-01T09:00:00Z");
    let (status, body) = s
        .upload(&creds, json!({"batch_id": "bad", "records": records}))
        .await;
    assert_eq!(status, 400);
    let msg = body["message"].as_str().unwrap();
    assert!(msg.starts_with("record 1: end_time"), "{msg}");

    let mut unknown_flag = three_cycles();
    unknown_flag[2]["is_cool"] = json!(true);
    let (status, body) = s
        .upload(&creds, json!({"batch_id": "u", "records": unknown_flag}))
        .await;
    assert_eq!(status, 400);
    assert_message_has(&body, "is_cool");

    let (status, _) = s
        .upload(
            &creds,
            json!({"batch_id": "x", "device_id": other_device, "records": three_cycles()}),
        )
        .await;
    assert_eq!(status, 403, "an agent cannot write for another device");

    let too_many: Vec<Value> = (0..10_001)
        .map(|i| {
            record(
                &format!("m{i}"),
                "2026-05-01T09:00:00Z",
                "2026-05-01T09:01:00Z",
                true,
                false,
            )
        })
        .collect();
    let (status, _) = s
        .upload(&creds, json!({"batch_id": "big", "records": too_many}))
        .await;
    assert_eq!(status, 413);

    let resp = s
        .client
        .post(format!("{}/api/v1/agent/usage", s.url))
        .bearer_auth(&creds)
        .header("content-type", "application/json")
        .body("{\"batch_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let (_, stored) = s.get("/api/v1/usage", &s.admin).await;
    assert_eq!(stored.as_array().unwrap().len(), 0, "nothing was stored");
    // The other agent's own upload still works.
    let (status, _) = s
        .upload(&other_creds, json!({"batch_id": "ok", "device_id": other_device, "records": three_cycles(), "dropped": 4}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, agents) = s.get("/api/v1/agents", &s.admin).await;
    let other = entry(&agents, "device_id", other_device);
    assert_eq!(
        other["dropped_records"], 4,
        "spool drops are reported, never silent"
    );
    assert_ne!(device, other_device);
}

/// `GET /api/v1/agent/policy` as the agent `creds`, naming by its ETag the policy it holds
/// when it holds one: the request an agent makes each cycle.
async fn get_policy(s: &TestServer, creds: &str, etag: Option<&str>) -> reqwest::Response {
    let request = s.client.get(format!("{}/api/v1/agent/policy", s.url));
    let request = request.bearer_auth(creds);
    match etag {
        Some(etag) => request.header("if-none-match", etag),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

async fn policy_carries_site_rules_with_an_etag(backend: Backend) {
    let s = start(backend).await;
    let (creds, _) = s.enroll("pc1").await;
    let rule = json!({"name": "Editor", "file_name": "code", "file_version": "1.*"});
    assert_eq!(s.post_as_admin("/api/v1/rules", rule).await.0, 201);
    let disabled = json!({"name": "Off", "file_name": "vim", "enabled": false});
    assert_eq!(s.post_as_admin("/api/v1/rules", disabled).await.0, 201);
    let resp = get_policy(&s, &creds, None).await;
    assert_eq!(resp.status(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let policy: Value = resp.json().await.unwrap();
    assert_eq!(policy["site_code"], "S01");
    assert_eq!(
        policy["rules"].as_array().unwrap().len(),
        1,
        "disabled rules are not sent"
    );
    assert_eq!(policy["rules"][0]["file_version"], "1.*");
    assert_eq!(policy["report_interval_secs"], 900);
    let unchanged = get_policy(&s, &creds, Some(&etag)).await;
    assert_eq!(unchanged.status(), 304);
    let another = json!({"name": "Python", "original_file_name": "python3.11"});
    assert_eq!(s.post_as_admin("/api/v1/rules", another).await.0, 201);
    let changed = get_policy(&s, &creds, Some(&etag)).await;
    assert_eq!(changed.status(), 200, "a new rule changes the ETag");
}

async fn the_body_size_limit_answers_413(backend: Backend) {
    let s = start(backend).await;
    let (creds, _) = s.enroll("pc1").await;
    let huge = "x".repeat(17 * 1024 * 1024);
    let resp = s
        .client
        .post(format!("{}/api/v1/agent/usage", s.url))
        .bearer_auth(&creds)
        .header("content-type", "application/json")
        .body(format!("{{\"batch_id\": \"{huge}\", \"records\": []}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}

fn inventory(hash: &str, packages: &[(&str, &[&str])]) -> Value {
    let software: Vec<Value> = packages
        .iter()
        .map(|(name, exes)| json!({"name": name, "version": "1.0", "publisher": "Debian", "executables": exes}))
        .collect();
    json!({"hash": hash, "os": "Debian 12",
           "hardware": {"cpu_model": "Xeon", "sockets": 1, "cores": 4, "threads": 8, "is_virtual": false},
           "software": software})
}

async fn inventory_feeds_automatic_rules(backend: Backend) {
    let s = start(backend).await;
    // Ten devices: vim everywhere, gimp on one (10 %), emacs on none beyond the threshold;
    // and on every one the noise old code made rules of: base utilities (`[`, `ls`), a Perl
    // library's aliases (`GET`), a versioned LLVM test tool (`FileCheck-14`), a shell.
    for i in 0..10 {
        let (creds, _) = s.enroll(&format!("pc{i}")).await;
        let mut packages: Vec<(&str, &[&str])> = vec![
            ("vim", &["vim", "vimdiff"]),
            ("coreutils", &["[", "ls", "sleep"]),
            ("libwww-perl", &["GET", "HEAD", "lwp-request"]),
            ("llvm-14-tools", &["FileCheck-14"]),
            ("bash", &["bash"]),
        ];
        if i == 0 {
            packages.push(("gimp", &["gimp"]));
        }
        let (status, ack) = s
            .post(
                "/api/v1/agent/inventory",
                Some(&creds),
                inventory(&format!("h{i}"), &packages),
            )
            .await;
        assert_eq!((status, ack["changed"].as_bool()), (200, Some(true)));
        let (_, again) = s
            .post(
                "/api/v1/agent/inventory",
                Some(&creds),
                inventory(&format!("h{i}"), &packages),
            )
            .await;
        assert_eq!(
            again["changed"], false,
            "an unchanged inventory is not stored again"
        );
    }
    let (creds, _) = s.enroll("bad").await;
    let bad = inventory("h", &[("x", &["/usr/bin/x"])]);
    assert_eq!(
        s.post("/api/v1/agent/inventory", Some(&creds), bad).await.0,
        400
    );

    assert_eq!(
        s.post(
            "/api/v1/rules",
            Some(&s.admin),
            json!({"name": "Diff", "file_name": "vimdiff"})
        )
        .await
        .0,
        201
    );
    assert_eq!(
        s.post_as_auditor("/api/v1/rules/auto", json!({})).await.0,
        403
    );
    let (status, created) = s.post_as_admin("/api/v1/rules/auto", json!({})).await;
    assert_eq!(status, 200, "{created}");
    let names = strings(&created, "file_name");
    assert_eq!(
        names,
        ["vim", "gimp"],
        "vimdiff already has a rule; gimp is on exactly 10 %; no base utility, library alias, \
         versioned tool or shell"
    );
    assert_eq!(strings(&created, "name"), ["vim (vim)", "gimp (gimp)"]);
    assert!(created
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["enabled"] == false && r["origin"] == "automatic"));
    let (_, again) = s.post_as_admin("/api/v1/rules/auto", json!({})).await;
    assert!(again.as_array().unwrap().is_empty(), "never a duplicate");
    let (_, devices) = s.get("/api/v1/devices", &s.admin).await;
    assert_eq!(devices[0]["cores"], 4);
    let (status, _) = s
        .post_as_admin(
            "/api/v1/rules/auto",
            json!({"min_percent_of_devices": 150.0}),
        )
        .await;
    assert_eq!(status, 400);
}
