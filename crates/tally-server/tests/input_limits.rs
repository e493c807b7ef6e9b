//! Issue 15's input faults over HTTP, each on both backends: a `dropped` count that overflowed
//! the stored sum (F1), times outside the plausible window and work that grew with a record's
//! or a session's length (F2, F3), license quantities that wrapped (F6), and the missing limits
//! on lengths, characters, numbers and expiry (F7). Every limit is `tally_core::limits`'s.

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::json::entry;
use common::{record, start, start_with_code_rule, upload, Backend};
use reqwest::Method;
use serde_json::{json, Value};
use tally_core::import::{ApplicationRow, Batch, LicenseRow, Origin, SessionRow};
use tally_core::limits::{MAX_NAME, MAX_QUANTITY};
use tally_core::{AssignmentType, Metric, NewUsageRecord};

each_backend!(async
    a_dropped_count_past_the_limit_is_refused_and_the_agents_list_keeps_answering,
    usage_times_outside_the_plausible_window_are_refused,
    a_stored_session_of_ten_millennia_costs_compliance_only_its_period,
    a_record_since_1970_is_summarised_over_the_retention_only,
    license_quantities_are_bounded_and_stored_ones_never_wrap,
    names_are_bounded_in_length,
    names_with_control_characters_are_refused,
    negative_or_absurd_hardware_is_refused,
    an_enrolment_token_that_already_expired_is_refused,
);

fn at(line: usize) -> Origin {
    Origin {
        file: "test".into(),
        line,
    }
}

/// Asserts a 400 whose JSON error message names `field`.
fn refused(status: u16, body: &Value, field: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "bad_request", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(field), "{field} not named: {body}");
}

fn recent(id: &str, account: &str) -> Value {
    let end = Utc::now() - Duration::hours(1);
    let start = end - Duration::minutes(10);
    record(id, account, 0, &start.to_rfc3339(), &end.to_rfc3339())
}

async fn a_dropped_count_past_the_limit_is_refused_and_the_agents_list_keeps_answering(
    backend: Backend,
) {
    let s = start(backend).await;
    let (creds, _) = s.enroll("pc1").await;
    // Twice 2^62 overflowed the stored sum: SQLite made the column REAL and every list of
    // agents answered 503 from then on.
    for batch in ["b1", "b2"] {
        let (status, body) = s
            .upload(
                &creds,
                json!({"batch_id": batch, "records": [], "dropped": 4611686018427387904u64}),
            )
            .await;
        refused(status, &body, "dropped");
        let (status, agents) = s.get("/api/v1/agents", &s.admin).await;
        assert_eq!(status, 200, "{agents}");
    }
    let (status, body) = s
        .upload(
            &creds,
            json!({"batch_id": "b3", "records": [], "dropped": 10_000_000}),
        )
        .await;
    assert_eq!(status, 200, "the limit itself is accepted: {body}");
    // The store's sum saturates whatever it is given (a count stored before the limit).
    let agent = s.store.agents().await.unwrap().remove(0);
    for _ in 0..2 {
        s.store
            .agent_heartbeat(&agent.id, "1.0", i64::MAX / 2 + 1, Utc::now())
            .await
            .unwrap();
    }
    let (status, agents) = s.get("/api/v1/agents", &s.admin).await;
    assert_eq!(status, 200, "{agents}");
    assert_eq!(agents[0]["dropped_records"], i64::MAX, "{agents}");
    let (status, body) = s
        .upload(
            &creds,
            json!({"batch_id": "b4", "records": [], "dropped": 1}),
        )
        .await;
    assert_eq!(status, 200, "the agent keeps reporting: {body}");
}

async fn usage_times_outside_the_plausible_window_are_refused(backend: Backend) {
    let s = start_with_code_rule(backend).await;
    let (creds, _) = s.enroll("pc1").await;
    let tomorrow_and_more = (Utc::now() + Duration::hours(26)).to_rfc3339();
    for (rec, field) in [
        // A run "started" in 1726: a 300-year session for compliance.
        (
            record(
                "old",
                "ann",
                0,
                "1726-01-01T00:00:00Z",
                "2026-01-01T00:00:00Z",
            ),
            "start_time",
        ),
        (
            record(
                "y2k",
                "ann",
                0,
                "1999-12-31T23:59:59Z",
                "2000-01-01T00:10:00Z",
            ),
            "start_time",
        ),
        (
            record(
                "far",
                "ann",
                0,
                "2026-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z",
            ),
            "end_time",
        ),
        (
            record("ahead", "ann", 0, &tomorrow_and_more, &tomorrow_and_more),
            "start_time",
        ),
    ] {
        let (status, body) = s
            .upload(&creds, json!({"batch_id": "x", "records": [rec]}))
            .await;
        refused(status, &body, field);
        assert!(
            body["message"].as_str().unwrap().contains("2000-01-01"),
            "the window is stated: {body}"
        );
    }
    // The window's edges are accepted: 2000-01-01 and the clock plus a few hours.
    let soon = (Utc::now() + Duration::hours(2)).to_rfc3339();
    let edges = vec![
        record(
            "edge1",
            "ann",
            0,
            "2000-01-01T00:00:00Z",
            "2000-01-01T00:10:00Z",
        ),
        record("edge2", "ann", 0, &soon, &soon),
    ];
    upload(&s, &creds, "edges", edges).await;
}

/// Compliance of a concurrent-users application over a session stored from 0001 to 9999 (the
/// API and the import now refuse it, so it is stored through the store, as rows stored before
/// the fix are). Expanded whole it took 23.9 GB; clipped to the metering period it is one
/// user in the period's hours. The count of hours expanded is asserted in `tally-core`'s
/// `a_session_is_expanded_only_over_the_metering_period_never_its_own_length`.
async fn a_stored_session_of_ten_millennia_costs_compliance_only_its_period(backend: Backend) {
    let s = start(backend).await;
    let (_creds, _) = s.enroll("pc1").await;
    let batch = Batch {
        users: vec![(
            at(1),
            tally_core::import::UserRow {
                account: "ann".into(),
                ..Default::default()
            },
        )],
        applications: vec![(at(1), ApplicationRow::new("Chat", Metric::ConcurrentUsers))],
        sessions: vec![(
            at(1),
            SessionRow {
                application: "Chat".into(),
                host_name: "pc1".into(),
                account: "ann".into(),
                start: Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
                end: Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            },
        )],
        ..Default::default()
    };
    let problems =
        tally_core::import::validate(&batch, &s.store.import_known().await.unwrap(), Utc::now());
    let problems: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        problems.len(),
        2,
        "the import refuses both times: {problems:?}"
    );
    s.import(&batch, Utc::now()).await;
    let (status, positions) = s
        .get("/api/v1/compliance?app=Chat&as_of=2026-03-20", &s.admin)
        .await;
    assert_eq!(status, 200, "{positions}");
    assert_eq!(positions[0]["required"], 1, "{positions}");
    assert_eq!(positions[0]["shortfall"], 1, "{positions}");
}

/// The hourly summary of a record from 1970 (stored directly, as before the fix) and of one
/// from 2000 (accepted by the API) is written only for the summaries' retention before each
/// record's end: counted by the rows the task wrote, never timed.
async fn a_record_since_1970_is_summarised_over_the_retention_only(backend: Backend) {
    let s = start_with_code_rule(backend).await;
    let (creds, device) = s.enroll("pc1").await;
    let (status, body) = s
        .call(
            Method::PATCH,
            "/api/v1/tasks/delete_aged_summaries",
            Some(&s.admin),
            Some(json!({"age_days": 2})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let now = Utc::now() - Duration::minutes(1);
    let since_2000 = record(
        "since-2000",
        "ann",
        0,
        "2000-01-01T00:00:00Z",
        &now.to_rfc3339(),
    );
    upload(&s, &creds, "b1", vec![since_2000]).await;
    let stored = s
        .store
        .usage_records(&Default::default())
        .await
        .unwrap()
        .remove(0);
    let since_1970 = NewUsageRecord::whole_run(
        "since-1970",
        (device, stored.file_id, stored.user_id),
        chrono::DateTime::UNIX_EPOCH,
        now,
    );
    s.store.insert_usage(&[since_1970]).await.unwrap();
    for task in ["summarize_file_usage", "summarize_monthly_usage"] {
        let (status, state) = s.run_task(task).await;
        assert_eq!(status, 200, "{state}");
        assert_eq!(state["last_error"], Value::Null, "{state}");
        assert_eq!(state["pending_records"], 0, "{state}");
        let rows = state["last_rows"].as_i64().unwrap();
        let most = match task {
            // Two days of hours, and the hour it ends in.
            "summarize_file_usage" => 2 * 24 + 1,
            // At most two months, for each of the two records.
            _ => 4,
        };
        assert!(
            (1..=most).contains(&rows),
            "{task}: {rows} rows written; at most {most}"
        );
    }
    let from = (now - Duration::days(3)).date_naive();
    let (status, hours) = s
        .get(
            &format!(
                "/api/v1/summaries/file-usage?from={from}&to={}",
                now.date_naive()
            ),
            &s.admin,
        )
        .await;
    assert_eq!(status, 200, "{hours}");
    assert!(
        hours.as_array().is_some_and(|h| !h.is_empty()),
        "the recent hours are summarised: {hours}"
    );
}

async fn license_quantities_are_bounded_and_stored_ones_never_wrap(backend: Backend) {
    let s = start(backend).await;
    let app = json!({"name": "Office", "metric": "installations"});
    let (status, body) = s.post_as_admin("/api/v1/applications", app).await;
    assert_eq!(status, 200, "{body}");
    let license = |quantity: i64| {
        json!({"application": "Office", "metric": "installations", "quantity": quantity,
               "assignment_type": "organization"})
    };
    for quantity in [i64::MAX, MAX_QUANTITY + 1] {
        let (status, body) = s.post_as_admin("/api/v1/licenses", license(quantity)).await;
        refused(status, &body, "quantity");
    }
    let (status, body) = s
        .post_as_admin("/api/v1/licenses", license(MAX_QUANTITY))
        .await;
    assert_eq!(status, 201, "the limit itself is accepted: {body}");
    // Two licenses of i64::MAX stored before the limit (through the store, as the import did)
    // made owned -2 and the status "compliant".
    let huge = LicenseRow::new(
        "Office",
        Metric::Installations,
        i64::MAX,
        AssignmentType::Organization,
    );
    let batch = Batch {
        licenses: vec![(at(1), huge.clone()), (at(2), huge)],
        ..Default::default()
    };
    s.import(&batch, Utc::now()).await;
    let (status, positions) = s.get("/api/v1/compliance?app=Office", &s.admin).await;
    assert_eq!(status, 200, "{positions}");
    let office = &positions[0];
    assert_eq!(office["owned"], i64::MAX, "{office}");
    assert_eq!(office["surplus"], i64::MAX, "{office}");
    assert_eq!(office["status"], "over_licensed", "{office}");
}

async fn names_are_bounded_in_length(backend: Backend) {
    let s = start_with_code_rule(backend).await;
    let (creds, _) = s.enroll("pc1").await;
    let long = "a".repeat(MAX_NAME + 1);
    let (status, body) = s
        .upload(
            &creds,
            json!({"batch_id": "b", "records": [recent("r1", &"x".repeat(100_000))]}),
        )
        .await;
    refused(status, &body, "user.account");
    let mut file_named = recent("r2", "ann");
    file_named["file"]["file_name"] = json!(long);
    let (status, body) = s
        .upload(&creds, json!({"batch_id": "b", "records": [file_named]}))
        .await;
    refused(status, &body, "file.file_name");
    let (status, body) = s
        .post(
            "/api/v1/agent/heartbeat",
            Some(&creds),
            json!({"agent_version": "1".repeat(1_000_000), "sent_at": Utc::now()}),
        )
        .await;
    refused(status, &body, "agent_version");
    let rule = json!({"name": "r".repeat(1_000_000), "file_name": "vim"});
    let (status, body) = s.post_as_admin("/api/v1/rules", rule).await;
    refused(status, &body, "name");
    let app = json!({"name": long, "metric": "installations"});
    let (status, body) = s.post_as_admin("/api/v1/applications", app).await;
    refused(status, &body, "name");
    let (status, token) = s
        .post_as_admin("/api/v1/enrollment-tokens", json!({"name": "t"}))
        .await;
    assert_eq!(status, 201);
    let enroll = json!({"enrollment_token": token["token"], "host_name": "h".repeat(300)});
    let (status, body) = s.post("/api/v1/agent/enroll", None, enroll).await;
    refused(status, &body, "host_name");
    // At the limit, everything is accepted.
    let mut at_limit = recent("r3", &"x".repeat(MAX_NAME));
    at_limit["file"]["product_name"] = json!("p".repeat(MAX_NAME));
    upload(&s, &creds, "ok", vec![at_limit]).await;
}

async fn names_with_control_characters_are_refused(backend: Backend) {
    let s = start_with_code_rule(backend).await;
    let (creds, _) = s.enroll("pc1").await;
    let mut nul = recent("r1", "ann");
    nul["file"]["file_name"] = json!("co\u{0}de");
    let (status, body) = s
        .upload(&creds, json!({"batch_id": "b", "records": [nul]}))
        .await;
    refused(status, &body, "file.file_name");
    let (status, body) = s
        .upload(
            &creds,
            json!({"batch_id": "b", "records": [recent("r2", "ann\u{1b}[2J")]}),
        )
        .await;
    refused(status, &body, "user.account");
    let (status, body) = s
        .post(
            "/api/v1/agent/heartbeat",
            Some(&creds),
            json!({"agent_version": "\u{1b}[2J\u{1b}[31mPWN\u{1b}[0m", "sent_at": Utc::now()}),
        )
        .await;
    refused(status, &body, "agent_version");
    let (status, agents) = s.get("/api/v1/agents", &s.admin).await;
    assert_eq!(status, 200);
    assert!(!agents.to_string().contains("PWN"), "{agents}");
    let rule = json!({"name": "bad\u{7}rule", "file_name": "vim"});
    let (status, body) = s.post_as_admin("/api/v1/rules", rule).await;
    refused(status, &body, "name");
}

async fn negative_or_absurd_hardware_is_refused(backend: Backend) {
    let s = start(backend).await;
    let (creds, device) = s.enroll("pc1").await;
    for (field, hardware) in [
        ("hardware.cores", json!({"cores": -5})),
        ("hardware.sockets", json!({"sockets": -1})),
        ("hardware.memory_bytes", json!({"memory_bytes": -1})),
        ("hardware.threads", json!({"threads": 2_000_000})),
    ] {
        let inventory = json!({"hash": "h1", "hardware": hardware});
        let (status, body) = s
            .post("/api/v1/agent/inventory", Some(&creds), inventory)
            .await;
        refused(status, &body, field);
    }
    let (status, devices) = s.get("/api/v1/devices", &s.admin).await;
    assert_eq!(status, 200, "{devices}");
    let dev = entry(&devices, "id", device);
    assert_eq!(dev["cores"], Value::Null, "nothing stored: {dev}");
    let inventory = json!({"hash": "h2", "hardware": {"cores": 8, "sockets": 1}});
    let (status, body) = s
        .post("/api/v1/agent/inventory", Some(&creds), inventory)
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn an_enrolment_token_that_already_expired_is_refused(backend: Backend) {
    let s = start(backend).await;
    let past = Utc::now() - Duration::minutes(1);
    let (status, body) = s
        .post_as_admin(
            "/api/v1/enrollment-tokens",
            json!({"name": "late", "expires_at": past}),
        )
        .await;
    refused(status, &body, "expires_at");
    let (_, tokens) = s.get("/api/v1/enrollment-tokens", &s.admin).await;
    assert_eq!(tokens, json!([]), "nothing created");
    let future = Utc::now() + Duration::days(1);
    let (status, body) = s
        .post_as_admin(
            "/api/v1/enrollment-tokens",
            json!({"name": "ok", "expires_at": future}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// utoipa takes only literals in `#[schema(max_length = …)]`, so the document's numbers are
/// compared with `tally_core::limits`'s here: a limit changed in one place and not the other
/// fails.
#[test]
fn the_openapi_document_states_the_limits_the_server_enforces() {
    use tally_core::limits::*;
    let doc: Value = serde_json::from_str(&tally_server::openapi_json()).unwrap();
    let schema =
        |name: &str, field: &str| doc["components"]["schemas"][name]["properties"][field].clone();
    let cases = [
        ("UserRef", "account", "maxLength", json!(MAX_NAME)),
        ("FileInfo", "file_name", "maxLength", json!(MAX_NAME)),
        ("FileInfo", "version", "maxLength", json!(MAX_VERSION)),
        ("FileInfo", "language", "maximum", json!(MAX_LANGUAGE)),
        ("UsageRecordV1", "meter_data_id", "maxLength", json!(MAX_ID)),
        (
            "UsageBatch",
            "dropped",
            "maximum",
            json!(MAX_DROPPED_PER_REPORT),
        ),
        (
            "Heartbeat",
            "agent_version",
            "maxLength",
            json!(MAX_VERSION),
        ),
        ("Hardware", "cores", "maximum", json!(MAX_PROCESSORS)),
        ("Hardware", "cores", "minimum", json!(0)),
        (
            "Hardware",
            "memory_bytes",
            "maximum",
            json!(MAX_MEMORY_BYTES),
        ),
        ("LocalAccount", "shell", "maxLength", json!(MAX_TEXT)),
        ("EnrollRequest", "host_name", "maxLength", json!(MAX_NAME)),
        ("RuleSpec", "name", "maxLength", json!(MAX_NAME)),
        ("RuleSpec", "comment", "maxLength", json!(MAX_TEXT)),
        ("LicenseRow", "quantity", "maximum", json!(MAX_QUANTITY)),
        ("LicenseRow", "notes", "maxLength", json!(MAX_TEXT)),
        (
            "ApplicationRow",
            "period_days",
            "maximum",
            json!(MAX_PERIOD_DAYS),
        ),
        ("CreateToken", "name", "maxLength", json!(MAX_NAME)),
    ];
    for (name, field, keyword, limit) in cases {
        let property = schema(name, field);
        // Numbers may come back as 255 or 255.0.
        let stated = property[keyword].as_f64();
        assert_eq!(
            stated,
            limit.as_f64(),
            "{name}.{field} {keyword}: {property}"
        );
    }
}
