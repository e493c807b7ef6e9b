//! One reclaim list: `/api/v1/reclaim` (what `tally reclaim` prints) and the `reclaim` report
//! answer the same question with the same installations, last use, cost and license, from
//! agents' inventories and usage and a license added over the API. Only installations whose
//! use is known are claimed; the others are "no usage data".

mod common;

use common::json::strings;
use common::{record, start_with_code_rule, summarise, upload, Backend};
use serde_json::{json, Value};
use tally_core::import::{Batch, DeviceRow, Origin};

each_backend!(async
    the_api_and_the_report_give_one_reclaim_list,
    unknown_use_is_no_usage_data_and_excluded_devices_are_left_out,
);

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

    let (status, list) = server.get("/api/v1/reclaim?days=30", &server.auditor).await;
    assert_eq!(status, 200, "{list}");
    let idle = &list["idle"];
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
    let license = idle[0]["license"].as_str().unwrap().to_string();
    assert!(license.ends_with(": 1 × installations"), "{license}");
    assert_eq!(list["known_installations"], 2);
    assert_eq!(list["no_usage_data"], json!([]));
    assert_eq!(
        (&list["idle_total"], &list["idle_value"]),
        (&json!(1), &json!([{"minor": 4500, "currency": "USD"}]))
    );

    // A page at a time: past the end the page is empty, the totals are still of them all.
    let (status, past) =
        (server.get("/api/v1/reclaim?days=30&limit=1&offset=1", &server.auditor)).await;
    assert_eq!(status, 200, "{past}");
    assert_eq!(past["idle"], json!([]));
    assert_eq!(
        (&past["idle_total"], &past["idle_value"]),
        (&list["idle_total"], &list["idle_value"])
    );
    let (_, first) = (server.get("/api/v1/reclaim?days=30&limit=1", &server.auditor)).await;
    assert_eq!(first["idle"], list["idle"]);
    for bad in ["limit=0", "limit=1001", "offset=-1"] {
        let path = format!("/api/v1/reclaim?days=30&{bad}");
        let (status, body) = server.get(&path, &server.auditor).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // The report takes the same days (and as-of) as the API and the CLI: the same list.
    let path = "/api/v1/reports/reclaim?days=30";
    let (status, report) = server.get(path, &server.auditor).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["rows"],
        json!([{"program": "VS Code", "computer": "east", "package": "code", "version": "1.95",
                "last_used": "never", "days_unused": null, "units": 1, "cost": "45.00 USD",
                "license": license}])
    );
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("1 of 2 installations whose use is known"),
        "{report}"
    );
    let path = "/api/v1/reports/reclaim?application=Nope";
    assert_eq!(server.get(path, &server.auditor).await.0, 404);
    assert_eq!(
        server
            .get("/api/v1/reclaim?app=Nope", &server.auditor)
            .await
            .0,
        404
    );
    let long = format!("/api/v1/reclaim?app={}", "x".repeat(300));
    assert_eq!(server.get(&long, &server.auditor).await.0, 400);
}

/// An inventory with VS Code and a database server nothing meters.
fn inventory_with_database(host: &str) -> Value {
    let mut inventory = inventory(host);
    inventory["software"].as_array_mut().unwrap().push(
        json!({"name": "dbserver", "version": "15", "publisher": "Acme", "executables": ["dbd"]}),
    );
    inventory
}

/// A database server nothing meters is not "never used" (old code claimed every installation
/// of it, at its license's price): its installations are counted under "no usage data" with
/// the reason and no cost. A retired computer is listed in neither part.
async fn unknown_use_is_no_usage_data_and_excluded_devices_are_left_out(backend: Backend) {
    let server = start_with_code_rule(backend).await;
    let admin = Some(server.admin.as_str());
    for host in ["west", "east", "old"] {
        let (creds, _) = server.enroll(host).await;
        let body = inventory_with_database(host);
        let (status, ack) = server
            .post("/api/v1/agent/inventory", Some(&creds), body)
            .await;
        assert_eq!(status, 200, "{ack}");
    }
    let retire = Batch {
        devices: vec![(
            Origin {
                file: "t".into(),
                line: 2,
            },
            DeviceRow {
                host_name: "old".into(),
                status: Some(tally_core::DeviceStatus::Retired),
                ..DeviceRow::default()
            },
        )],
        ..Default::default()
    };
    server.import(&retire, chrono::Utc::now()).await;
    for (app, license) in [
        (
            json!({"name": "VS Code", "publisher": "Microsoft", "metric": "installations",
                   "software": "code", "metering_rule": "Code"}),
            json!({"application": "VS Code", "metric": "installations", "quantity": 3,
                   "assignment_type": "organization", "unit_cost": "45", "currency": "USD",
                   "vendor": "Microsoft"}),
        ),
        (
            json!({"name": "Database", "publisher": "Acme", "metric": "installations",
                   "software": "dbserver"}),
            json!({"application": "Database", "metric": "installations", "quantity": 3,
                   "assignment_type": "organization", "unit_cost": "15176", "currency": "EUR"}),
        ),
    ] {
        let (status, body) = server.post("/api/v1/applications", admin, app).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server.post("/api/v1/licenses", admin, license).await;
        assert_eq!(status, 201, "{body}");
    }

    let (status, list) = server.get("/api/v1/reclaim?days=30", &server.auditor).await;
    assert_eq!(status, 200, "{list}");
    let idle = &list["idle"];
    assert_eq!(
        strings(idle, "application"),
        ["VS Code", "VS Code"],
        "the database is not idle, only unmetered: {list}"
    );
    assert_eq!(
        strings(idle, "host_name"),
        ["east", "west"],
        "retired old is not listed"
    );
    assert!(
        idle[0]["license"]
            .as_str()
            .unwrap()
            .ends_with(": 3 × installations, Microsoft"),
        "{idle}"
    );
    assert_eq!(list["known_installations"], 2);
    let unknown = list["no_usage_data"].as_array().unwrap();
    assert_eq!(unknown.len(), 1, "{list}");
    assert_eq!(
        (&unknown[0]["application"], &unknown[0]["installations"]),
        (&json!("Database"), &json!(2)),
        "old is retired: two installations count"
    );
    let reason = unknown[0]["reason"].as_str().unwrap();
    assert!(reason.contains("nothing meters it"), "{reason}");

    // One application: the same parts for it alone.
    let path = "/api/v1/reclaim?days=30&app=database";
    let (_, only) = server.get(path, &server.auditor).await;
    assert_eq!(only["idle"], json!([]));
    assert_eq!(only["no_usage_data"], list["no_usage_data"]);

    // The report shows both parts: the idle rows, then the application with no usage data.
    let (status, report) = server
        .get("/api/v1/reports/reclaim?days=30", &server.auditor)
        .await;
    assert_eq!(status, 200, "{report}");
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{report}");
    assert_eq!(
        (
            &rows[2]["program"],
            &rows[2]["computer"],
            &rows[2]["last_used"]
        ),
        (
            &json!("Database"),
            &json!("2 installations"),
            &json!("no usage data")
        )
    );
    assert_eq!(rows[2]["cost"], Value::Null, "no cost claimed");
    assert!(
        report["notes"][1]
            .as_str()
            .unwrap()
            .starts_with("No usage data: 2 installations"),
        "{report}"
    );
}
