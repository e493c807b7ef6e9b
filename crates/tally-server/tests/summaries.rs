//! Summaries end to end: hand-built records uploaded through the agent API, the two
//! summarisation tasks run through the admin API, and the figures checked against hand
//! computation — an hour boundary, midnight at a month end, two clients in different UTC
//! offsets, overlapping runs of one program by one user, a late upload, and re-runs that
//! change nothing.

mod common;

use common::json::assert_message_has;
use common::{record, start, start_with_code_rule, summarise, upload, Backend, TestServer};
use reqwest::Method;
use serde_json::json;

each_backend!(async
    summaries_follow_hours_months_offsets_and_late_uploads,
    task_schedules_are_validated_and_only_admins_change_or_run_them,
    a_late_record_for_an_hour_past_the_ageing_cut_off_is_added_once,
);

/// Hourly rows by hour: (users, devices, usage minutes, peak runs, peak users).
async fn hours(server: &TestServer) -> Vec<(String, i64, i64, i64, i64, i64)> {
    let path = "/api/v1/summaries/file-usage?rule=Code&from=2026-01-31&to=2026-02-01";
    let (status, rows) = server.get(path, &server.admin).await;
    assert_eq!(status, 200, "{rows}");
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["hour"].as_str().unwrap()[11..16].to_string(),
                r["distinct_users"].as_i64().unwrap(),
                r["distinct_devices"].as_i64().unwrap(),
                r["usage_ms"].as_i64().unwrap() / 60_000,
                r["peak_concurrent_runs"].as_i64().unwrap(),
                r["peak_concurrent_users"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Monthly rows: (month, device, runs, usage minutes).
async fn months(server: &TestServer) -> Vec<(i64, i64, i64, i64)> {
    let path = "/api/v1/summaries/monthly?rule=Code&from=2026-01-01&to=2026-02-28";
    let (status, rows) = server.get(path, &server.admin).await;
    assert_eq!(status, 200, "{rows}");
    let mut rows: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["month"].as_i64().unwrap(),
                r["device_id"].as_i64().unwrap(),
                r["runs"].as_i64().unwrap(),
                r["usage_ms"].as_i64().unwrap() / 60_000,
            )
        })
        .collect();
    rows.sort();
    rows
}

async fn summaries_follow_hours_months_offsets_and_late_uploads(backend: Backend) {
    let server = start_with_code_rule(backend).await;
    let (west, a) = server.enroll("west").await; // UTC
    let (east, b) = server.enroll("east").await; // UTC+2
    upload(
        &server,
        &west,
        "w1",
        vec![
            // 22:40–23:20: across an hour boundary.
            record(
                "a1",
                "ann",
                0,
                "2026-01-31T22:40:00Z",
                "2026-01-31T23:20:00Z",
            ),
            // A second window of the same program by the same user, overlapping the first.
            record(
                "a2",
                "ann",
                0,
                "2026-01-31T23:00:00Z",
                "2026-01-31T23:30:00Z",
            ),
            // Over midnight at the month end.
            record(
                "a3",
                "ann",
                0,
                "2026-01-31T23:50:00Z",
                "2026-02-01T00:10:00Z",
            ),
        ],
    )
    .await;
    // The same UTC hour on a client two hours ahead: already 1 February there.
    upload(
        &server,
        &east,
        "e1",
        vec![record(
            "b1",
            "bob",
            120,
            "2026-01-31T23:10:00Z",
            "2026-01-31T23:40:00Z",
        )],
    )
    .await;
    summarise(&server).await;

    assert_eq!(
        hours(&server).await,
        [
            ("22:00".into(), 1, 1, 20, 1, 1),
            // a1 20 + a2 30 + a3 10 + b1 30; at 23:10–23:20 a1, a2 and b1 run: 3 runs, 2 users.
            ("23:00".into(), 2, 2, 90, 3, 2),
            ("00:00".into(), 1, 1, 10, 1, 1),
        ]
    );
    assert_eq!(
        months(&server).await,
        [
            (202601, a, 3, 80), // a1 40 + a2 30 + a3's first 10 minutes
            (202602, a, 0, 10), // a3's last 10 minutes: no new run
            (202602, b, 1, 30), // bob's January evening is his February morning
        ]
    );

    // Running again changes nothing.
    summarise(&server).await;
    assert_eq!(hours(&server).await.len(), 3);
    assert_eq!(months(&server).await[0], (202601, a, 3, 80));

    // An agent that was offline sends an old run late: it lands where it belongs.
    upload(
        &server,
        &west,
        "w2",
        vec![record(
            "a4",
            "ann",
            0,
            "2026-01-31T22:50:00Z",
            "2026-01-31T23:05:00Z",
        )],
    )
    .await;
    summarise(&server).await;
    let hours = hours(&server).await;
    assert_eq!(hours[0], ("22:00".into(), 1, 1, 30, 2, 1));
    // a4 ends at 23:05, before b1 starts: the peak stays 3.
    assert_eq!(hours[1], ("23:00".into(), 2, 2, 95, 3, 2));
    assert_eq!(months(&server).await[0], (202601, a, 4, 95));

    // The task list shows both summaries caught up.
    let (status, tasks) = server.get("/api/v1/tasks", &server.auditor).await;
    assert_eq!(status, 200);
    let newest = tasks[0]["newest_serial"].as_i64().unwrap();
    for t in tasks.as_array().unwrap().iter().take(2) {
        assert_eq!(
            (t["watermark"].as_i64(), &t["pending_records"]),
            (Some(newest), &json!(0))
        );
    }
}

async fn task_schedules_are_validated_and_only_admins_change_or_run_them(backend: Backend) {
    let server = start(backend).await;
    let path = "/api/v1/tasks/delete_aged_usage";
    let (status, body) = server
        .call(
            Method::PATCH,
            path,
            Some(&server.admin),
            Some(json!({"age_days": 1})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_message_has(&body, "between 2 and 255");
    let (status, body) = server
        .call(
            Method::PATCH,
            path,
            Some(&server.admin),
            Some(json!({"age_days": 30, "every_secs": 7200})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["age_days"].as_i64(), body["every_secs"].as_i64()),
        (Some(30), Some(7200))
    );
    let (status, _) = server
        .call(
            Method::PATCH,
            path,
            Some(&server.auditor),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(server.run_task("nope").await.0, 404);
    let (status, body) = server.run_task("delete_aged_usage").await;
    assert_eq!((status, &body["last_rows"]), (200, &json!(0)), "{body}");

    // While the task runs (here, as if the scheduler had started it), it is not started again.
    let running = server.store.lock_task("delete_aged_usage").await.unwrap();
    let (status, body) = server.run_task("delete_aged_usage").await;
    assert_eq!(status, 409, "{body}");
    assert_message_has(&body, "task delete_aged_usage is running already");
    running.unwrap().release().await.unwrap();
    assert_eq!(server.run_task("delete_aged_usage").await.0, 200);
}

/// An hour before the ageing task's cut-off may have lost its raw records, so a late record's
/// share is added to the stored row rather than recomputed: once, and a re-run adds nothing.
async fn a_late_record_for_an_hour_past_the_ageing_cut_off_is_added_once(backend: Backend) {
    let server = start_with_code_rule(backend).await;
    let (west, _) = server.enroll("west").await;
    let r1 = record(
        "a1",
        "ann",
        0,
        "2026-01-31T22:00:00Z",
        "2026-01-31T22:20:00Z",
    );
    upload(&server, &west, "w1", vec![r1]).await;
    summarise(&server).await;
    assert_eq!(hours(&server).await[0].3, 20);
    // The ageing task has run: hours more than its age (5 days) before it are past the cut-off.
    let (status, body) = server.run_task("delete_aged_usage").await;
    assert_eq!(status, 200, "{body}");

    let r2 = record(
        "b1",
        "bob",
        0,
        "2026-01-31T22:30:00Z",
        "2026-01-31T22:40:00Z",
    );
    upload(&server, &west, "w2", vec![r2]).await;
    summarise(&server).await;
    assert_eq!(hours(&server).await[0].3, 30, "20 stored + 10 late minutes");
    summarise(&server).await;
    assert_eq!(hours(&server).await[0].3, 30, "a re-run adds nothing");
}
