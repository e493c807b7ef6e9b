//! Reports over HTTP from usage uploaded through the agent API and summarised by the real
//! tasks: the catalogue, figures in CSV and JSON, a PDF, refusals with their reasons, and the
//! scheduled reports the `write_reports` task leaves in the data directory.

mod common;

use common::json::strings;
use common::{record, start_with_code_rule, summarise, upload, Backend, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

each_backend!(async
    reports_are_served_in_every_format_from_the_summaries,
    bad_report_requests_are_refused_with_the_reason,
    the_write_reports_task_writes_dated_files_and_ages_old_folders,
    csv_reports_neutralise_formulas_and_json_reports_keep_them,
);

async fn fetch(server: &TestServer, path: &str) -> (u16, String, Vec<u8>) {
    let resp = server
        .client
        .get(format!("{}{path}", server.url))
        .bearer_auth(&server.auditor)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    (status, kind, resp.bytes().await.unwrap().to_vec())
}

async fn seeded(backend: Backend) -> TestServer {
    let server = start_with_code_rule(backend).await;
    let (west, _) = server.enroll("west").await;
    let (east, _) = server.enroll("east").await;
    let ann = [
        ("a1", "2026-01-31T22:40:00Z", "2026-01-31T23:20:00Z"),
        ("a2", "2026-01-31T23:00:00Z", "2026-01-31T23:30:00Z"),
        ("a3", "2026-01-31T23:50:00Z", "2026-02-01T00:10:00Z"),
    ];
    let records = ann
        .iter()
        .map(|(id, from, to)| record(id, "ann", 0, from, to))
        .collect();
    upload(&server, &west, "w1", records).await;
    let bob = record(
        "b1",
        "bob",
        120,
        "2026-01-31T23:10:00Z",
        "2026-01-31T23:40:00Z",
    );
    upload(&server, &east, "e1", vec![bob]).await;
    summarise(&server).await;
    server
}

async fn reports_are_served_in_every_format_from_the_summaries(backend: Backend) {
    let server = seeded(backend).await;
    let (status, catalogue) = server.get("/api/v1/reports", &server.auditor).await;
    assert_eq!(status, 200);
    let names = strings(&catalogue, "name");
    assert_eq!(
        names,
        [
            "monthly-usage",
            "program-users",
            "program-computers",
            "reclaim",
            "heat-map",
            "concurrency",
            "elp",
            "tasks"
        ]
    );

    // January: ann's three runs (80 minutes); February: a3's last 10 minutes (no new run)
    // and bob's run, which is February on his UTC+2 clock.
    let path = "/api/v1/reports/monthly-usage?format=csv&from=2026-01&to=2026-02";
    let (status, kind, csv) = fetch(&server, path).await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(csv.as_slice())
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["Code", "2026-01", "3", "1", "1", "1 h 20 min"],
            ["Code", "2026-02", "1", "2", "2", "40 min"],
        ]
    );

    let path = "/api/v1/reports/concurrency?from=2026-01-31&to=2026-02-01";
    let (status, json) = server.get(path, &server.auditor).await;
    assert_eq!(status, 200, "{json}");
    let jan31 = &json["rows"][0];
    assert_eq!(
        (&jan31["date"], &jan31["peak_runs"], &jan31["peak_users"]),
        (&json!("2026-01-31"), &json!(3), &json!(2)),
        "a1, a2 and b1 at 23:10: {json}"
    );
    assert_eq!(json["site"], "Test");

    let (status, kind, pdf) = fetch(&server, "/api/v1/reports/tasks?format=pdf").await;
    assert_eq!((status, kind.as_str()), (200, "application/pdf"));
    assert!(pdf.starts_with(b"%PDF-"));
    let (status, _, html) = fetch(&server, "/api/v1/reports/heat-map?format=html").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(html).unwrap().contains("<svg"));
}

async fn bad_report_requests_are_refused_with_the_reason(backend: Backend) {
    let server = seeded(backend).await;
    let cases = [
        (
            "/api/v1/reports/monthly-usage?format=docx",
            400,
            "use pdf, html, csv or json",
        ),
        (
            "/api/v1/reports/monthly-usage?form=2026-01",
            400,
            "its parameters are from, to",
        ),
        ("/api/v1/reports/monthly-usage?from=Jan", 400, "YYYY-MM"),
        (
            "/api/v1/reports/program-users?program=vim",
            400,
            "the rules are Code",
        ),
        ("/api/v1/reports/usage", 404, "tally report list"),
    ];
    for (path, status, says) in cases {
        let (got, body) = server.get(path, &server.auditor).await;
        assert_eq!(got, status, "{path}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
    }
    let (status, _) = server
        .call(Method::GET, "/api/v1/reports/tasks", None, None)
        .await;
    assert_eq!(status, 401);
}

async fn the_write_reports_task_writes_dated_files_and_ages_old_folders(backend: Backend) {
    let server = seeded(backend).await;
    let old = server.reports_dir.join("2000-01-01");
    let other = server.reports_dir.join("keep-me");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let (status, state) = server.run_task("write_reports").await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["last_error"], Value::Null, "{state}");
    assert_eq!(state["last_rows"], 4, "{state}");
    let today = server
        .reports_dir
        .join(chrono::Utc::now().date_naive().to_string());
    for file in tally_report::ScheduledReport::DEFAULTS {
        let bytes = std::fs::read(today.join(file)).unwrap();
        assert!(!bytes.is_empty(), "{file}");
    }
    assert!(std::fs::read(today.join("monthly-usage.pdf"))
        .unwrap()
        .starts_with(b"%PDF-"));
    assert!(!old.exists(), "a folder older than 90 days is deleted");
    assert!(other.exists(), "a folder that is not a date is left alone");
    let leftovers: Vec<_> = std::fs::read_dir(&today)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "partial"))
        .collect();
    assert!(leftovers.is_empty());
}

/// Issue 15, F5: a host name and an account a spreadsheet would run as formulas leave the CSV
/// reports as text (a leading `'`), while the JSON report keeps them exact.
async fn csv_reports_neutralise_formulas_and_json_reports_keep_them(backend: Backend) {
    let server = start_with_code_rule(backend).await;
    let host = r#"=HYPERLINK("http://evil.example/h","host")"#;
    let account = "@SUM(1+1)*cmd|' /C calc'!A0";
    let (creds, _) = server.enroll(host).await;
    let run = record(
        "f1",
        account,
        0,
        "2026-01-31T22:40:00Z",
        "2026-01-31T23:20:00Z",
    );
    upload(&server, &creds, "f1", vec![run]).await;
    summarise(&server).await;
    for (report, value) in [("program-computers", host), ("program-users", account)] {
        let path = format!("/api/v1/reports/{report}?program=Code&from=2026-01&to=2026-01");
        let (status, _, csv) = fetch(&server, &format!("{path}&format=csv")).await;
        assert_eq!(status, 200);
        let cells: Vec<String> = csv::Reader::from_reader(csv.as_slice())
            .records()
            .flat_map(|r| r.unwrap().iter().map(String::from).collect::<Vec<_>>())
            .collect();
        assert!(cells.contains(&format!("'{value}")), "{report}: {cells:?}");
        assert!(
            !cells.iter().any(|c| c.starts_with(['=', '@'])),
            "{cells:?}"
        );

        let (status, json) = server
            .get(&format!("{path}&format=json"), &server.auditor)
            .await;
        assert_eq!(status, 200, "{json}");
        let exact = json["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| match row {
                Value::Object(cells) => cells.values().any(|c| c == value),
                Value::Array(cells) => cells.iter().any(|c| c == value),
                _ => false,
            });
        assert!(exact, "{report}: {json}");
    }
}
