//! One reclaim list: `/api/v1/reclaim` (what `tally reclaim` prints) and the `reclaim` report
//! answer the same question with the same installations, last use and cost, from agents'
//! inventories and usage and a license added over the API.

mod common;

use common::{record, start_with_code_rule, summarise, upload, Backend};
use serde_json::{json, Value};

each_backend!(async the_api_and_the_report_give_one_reclaim_list);

/// An agent's inventory with the `code` package (shipping the `code` executable).
fn inventory(host: &str) -> Value {
    json!({"hash": host, "os": "Debian 12",
           "hardware": {"cpu_model": "Xeon", "sockets": 1, "cores": 4, "threads": 8, "is_virtual": false},
           "software": [{"name": "code", "version": "1.95", "publisher": "Microsoft",
                         "executables": ["code"]}]})
}

async fn the_api_and_the_report_give_one_reclaim_list(backend: Backend) {
    let server = start_with_code_rule(backend).await;
    let admin = Some(server.admin.as_str());
    let mut agents = Vec::new();
    for host in ["west", "east"] {
        let (creds, _) = server.enroll(host).await;
        let (status, ack) = server
            .post("/api/v1/agent/inventory", Some(&creds), inventory(host))
            .await;
        assert_eq!(status, 200, "{ack}");
        agents.push(creds);
    }
    // West ran it an hour ago; east never did.
    let now = chrono::Utc::now();
    let (from, to) = (
        now - chrono::Duration::hours(2),
        now - chrono::Duration::hours(1),
    );
    let run = record("r1", "ann", 0, &from.to_rfc3339(), &to.to_rfc3339());
    upload(&server, &agents[0], "w1", vec![run]).await;
    summarise(&server).await;
    let app = json!({"name": "VS Code", "publisher": "Microsoft", "metric": "installations",
                     "software": "code", "metering_rule": "Code"});
    let (status, body) = server.post("/api/v1/applications", admin, app).await;
    assert_eq!(status, 200, "{body}");
    let license = json!({"application": "VS Code", "metric": "installations", "quantity": 1,
                         "assignment_type": "organization", "unit_cost": "45", "currency": "USD"});
    let (status, body) = server.post("/api/v1/licenses", admin, license).await;
    assert_eq!(status, 201, "{body}");

    let (status, idle) = server.get("/api/v1/reclaim?days=30", &server.auditor).await;
    assert_eq!(status, 200, "{idle}");
    assert_eq!(idle.as_array().unwrap().len(), 1, "{idle}");
    assert_eq!(
        (
            &idle[0]["host_name"],
            &idle[0]["package"],
            &idle[0]["version"]
        ),
        (&json!("east"), &json!("code"), &json!("1.95"))
    );
    assert_eq!(idle[0]["last_used"], Value::Null);
    assert_eq!(idle[0]["cost"], json!({"minor": 4500, "currency": "USD"}));

    // The same cut-off as days=30: the end of today less 30 days is midnight 29 days ago.
    let since = (now.date_naive() - chrono::Duration::days(29)).to_string();
    let path = format!("/api/v1/reports/reclaim?since={since}");
    let (status, report) = server.get(&path, &server.auditor).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["rows"],
        json!([{"computer": "east", "program": "VS Code", "package": "code", "version": "1.95",
                "last_used": "never", "days_unused": null, "units": 1, "cost": "45.00 USD"}])
    );
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("1 of 2 installations"),
        "{report}"
    );
    let path = "/api/v1/reports/reclaim?application=Nope";
    assert_eq!(server.get(path, &server.auditor).await.0, 404);
}
