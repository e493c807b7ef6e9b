//! An agent of the previous release against this server. The requests below are the JSON the
//! agent of commit 4255a8e (the first whole agent: before machine-id re-enrolment and the
//! input limits) sent, field for field as its `tally_core::wire::v1` serialised them; the
//! server must accept every one and meter with them as it does for today's agent. When a
//! change to the agent API breaks this test, the change breaks every agent not yet upgraded
//! (docs/operations.md#upgrades).

mod common;

use common::{start_with_code_rule, Backend};
use serde_json::json;

each_backend!(async an_agent_of_the_previous_release_enrols_reports_and_is_metered);

async fn an_agent_of_the_previous_release_enrols_reports_and_is_metered(backend: Backend) {
    let server = start_with_code_rule(backend).await;
    let (status, token) = server
        .post_as_admin("/api/v1/enrollment-tokens", json!({"name": "old agents"}))
        .await;
    assert_eq!(status, 201, "{token}");
    // No machine_id: that agent did not send one.
    let enrol = json!({
        "enrollment_token": token["token"], "host_name": "old-host",
        "fqdn": "old-host.example.org", "os": "Debian GNU/Linux 12 (bookworm)", "serial": null
    });
    let (status, enrolled) = server.post("/api/v1/agent/enroll", None, enrol).await;
    assert_eq!(status, 200, "{enrolled}");
    let creds = common::agent_creds(&enrolled);
    let (status, policy) = server.get("/api/v1/agent/policy", &creds).await;
    assert_eq!(status, 200, "{policy}");
    // The fields that agent read from the policy are all still there.
    for field in [
        "site_code",
        "rules",
        "report_interval_secs",
        "inventory_interval_secs",
        "heartbeat_interval_secs",
    ] {
        assert!(
            !policy[field].is_null(),
            "the policy lost {field}: {policy}"
        );
    }
    assert_eq!(policy["rules"][0]["file_name"], "code");
    let now = chrono::Utc::now();
    let (start, end) = (
        now - chrono::Duration::minutes(30),
        now - chrono::Duration::minutes(5),
    );
    let usage = json!({
        "batch_id": "old-1", "device_id": enrolled["device_id"], "dropped": 2,
        "records": [{
            "meter_data_id": "old-run-1",
            "file": {"file_name": "code", "original_file_name": "code", "version": "1.95.0",
                     "product_name": "Code", "publisher": "Microsoft", "language": 65535},
            "user": {"account": "alice", "full_name": null},
            "start_time": start, "start_time_offset": 60, "end_time": end, "end_time_offset": 60,
            "started": true, "still_running": false, "start_not_captured": false,
            "end_not_captured": false, "in_ts_session": false
        }]
    });
    let (status, ack) = server.upload(&creds, usage).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        (ack["batch_id"].as_str(), ack["stored"].as_u64()),
        (Some("old-1"), Some(1))
    );
    let beat = json!({"agent_version": "0.1.0", "sent_at": now});
    let (status, body) = server
        .post("/api/v1/agent/heartbeat", Some(&creds), beat)
        .await;
    assert_eq!(status, 204, "{body}");
    let inventory = json!({
        "hash": "h1", "os": "Debian GNU/Linux 12 (bookworm)",
        "hardware": {"cpu_model": "Xeon", "sockets": 1, "cores": 4, "threads": 8,
                     "memory_bytes": 8_589_934_592_i64, "is_virtual": true, "serial": null},
        "software": [{"name": "code", "version": "1.95.0", "publisher": "Microsoft",
                      "executables": ["code"]}],
        "accounts": [{"name": "alice", "uid": 1000, "full_name": "Alice", "shell": "/bin/bash",
                      "service_account": false, "reason": null}]
    });
    let (status, body) = server
        .post("/api/v1/agent/inventory", Some(&creds), inventory)
        .await;
    assert_eq!(status, 200, "{body}");
    // Metered as today's agent is: the run, the device's software, the dropped count.
    let (status, runs) = server.get("/api/v1/runs", &server.admin).await;
    assert_eq!(status, 200, "{runs}");
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    let (_, agents) = server.get("/api/v1/agents", &server.admin).await;
    assert_eq!(agents[0]["dropped_records"], 2);
    assert_eq!(agents[0]["agent_version"], "0.1.0");
    let device = enrolled["device_id"].as_i64().unwrap();
    let (status, inv) = server
        .get(
            &format!("/api/v1/devices/{device}/inventory"),
            &server.admin,
        )
        .await;
    assert_eq!(status, 200, "{inv}");
    assert!(inv.to_string().contains("1.95.0"), "{inv}");
}
