//! Licensing over HTTP with usage from a real agent upload: an application recognised by a
//! metering rule is not idle where the rule saw it run; daily snapshots keep the figures.

mod common;

use chrono::TimeZone;
use common::json::{entry, strings};
use common::{record, start, start_with_code_rule, summarise, upload, Backend};
use tally_core::import::{ApplicationRow, Batch, InstallationRow, LicenseRow, Origin};
use tally_core::{AssignmentType, Metric};

each_backend!(async
    metered_usage_keeps_an_installation_off_the_reclaim_list,
    a_past_day_counts_that_days_installations_and_statuses,
    the_agents_runs_count_for_the_user_and_concurrent_metrics,
    the_summary_counts_and_explains_and_the_detail_names_a_page_at_a_time,
);

/// Acme's Editor, licensed per installation, recognised by the package `editor`.
fn editor() -> ApplicationRow {
    ApplicationRow {
        publisher: "Acme".into(),
        software: Some("editor".into()),
        ..ApplicationRow::new("Editor", Metric::Installations)
    }
}

fn at(line: usize) -> Origin {
    Origin {
        file: "t".into(),
        line,
    }
}

async fn metered_usage_keeps_an_installation_off_the_reclaim_list(backend: Backend) {
    let server = start_with_code_rule(backend).await;
    let (west, _) = server.enroll("west").await;
    let (_east, _) = server.enroll("east").await;
    let now = chrono::Utc::now();
    let (from, to) = (
        now - chrono::Duration::hours(2),
        now - chrono::Duration::hours(1),
    );
    let run = record("r1", "ann", 0, &from.to_rfc3339(), &to.to_rfc3339());
    upload(&server, &west, "w1", vec![run]).await;
    summarise(&server).await;

    let install = |host: &str| InstallationRow {
        host_name: host.into(),
        software: "code".into(),
        version: "1.95".into(),
        publisher: "Microsoft".into(),
        installed_on: None,
    };
    let batch = Batch {
        applications: vec![(
            at(2),
            ApplicationRow {
                name: "VS Code".into(),
                publisher: "Microsoft".into(),
                metric: Metric::Installations,
                period_days: None,
                total_user_metric: None,
                software: Some("code".into()),
                software_publisher: Some("Microsoft".into()),
                software_version: None,
                metering_rule: Some("Code".into()),
            },
        )],
        installations: vec![(at(2), install("west")), (at(3), install("east"))],
        licenses: vec![(
            at(2),
            LicenseRow {
                unit_cost: Some("45".into()),
                currency: Some("USD".into()),
                ..LicenseRow::new(
                    "VS Code",
                    Metric::Installations,
                    1,
                    AssignmentType::Organization,
                )
            },
        )],
        ..Default::default()
    };
    let known = server.store.import_known().await.unwrap();
    assert!(tally_core::import::validate(&batch, &known, chrono::Utc::now()).is_empty());
    server.import(&batch, now).await;

    // West ran it an hour ago (through the rule); east never did.
    let (status, list) = server.get("/api/v1/reclaim?days=30", &server.auditor).await;
    assert_eq!(status, 200, "{list}");
    let idle = &list["idle"];
    let hosts = strings(idle, "host_name");
    assert_eq!(hosts, ["east"]);
    assert_eq!(
        idle[0]["cost"],
        serde_json::json!({"minor": 4500, "currency": "USD"})
    );
    let (status, _) = server.get("/api/v1/reclaim?days=0", &server.auditor).await;
    assert_eq!(status, 400);

    // Two installations, one license: under-licensed by one, priced at 45.00 USD.
    let (status, positions) = server.get("/api/v1/compliance", &server.auditor).await;
    assert_eq!(status, 200, "{positions}");
    assert_eq!(
        (
            positions[0]["required"].as_i64(),
            positions[0]["shortfall"].as_i64()
        ),
        (Some(2), Some(1))
    );
    let (status, _) = server
        .get("/api/v1/compliance?app=Nope", &server.auditor)
        .await;
    assert_eq!(status, 404);

    let (status, state) = server.run_task("snapshot_compliance").await;
    assert_eq!(
        (status, &state["last_rows"]),
        (200, &serde_json::json!(1)),
        "{state}"
    );
    let (status, trend) = server
        .get(
            "/api/v1/compliance/snapshots?app=vs%20code",
            &server.auditor,
        )
        .await;
    assert_eq!(status, 200, "{trend}");
    assert_eq!(
        (trend[0]["shortfall"].as_i64(), trend[0]["status"].as_str()),
        (Some(1), Some("under_licensed"))
    );
}

/// `as_of` on a past day counts what was installed then, with the statuses of then: an
/// installation dated after the day does not count, and a device retired later still does.
async fn a_past_day_counts_that_days_installations_and_statuses(backend: Backend) {
    use tally_core::import::{DeviceRow, UserRow};
    let server = start(backend).await;
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    let noon = |d| chrono::Utc.with_ymd_and_hms(2026, 3, d, 12, 0, 0).unwrap();
    let device = |host: &str, status| DeviceRow {
        host_name: host.into(),
        status: Some(status),
        ..DeviceRow::default()
    };
    let install = |host: &str, installed_on| InstallationRow {
        host_name: host.into(),
        software: "editor".into(),
        version: "2".into(),
        publisher: "Acme".into(),
        installed_on,
    };
    let first = Batch {
        devices: vec![
            (at(2), device("pc1", tally_core::DeviceStatus::Active)),
            (at(3), device("pc2", tally_core::DeviceStatus::Active)),
        ],
        users: vec![(
            at(2),
            UserRow {
                account: "ann".into(),
                ..UserRow::default()
            },
        )],
        applications: vec![(at(2), editor())],
        installations: vec![
            (at(2), install("pc1", None)),
            (at(3), install("pc2", Some(day(10)))),
        ],
        ..Default::default()
    };
    server.import(&first, noon(1)).await;
    let retire = Batch {
        devices: vec![(at(2), device("pc1", tally_core::DeviceStatus::Retired))],
        ..Default::default()
    };
    server.import(&retire, noon(20)).await;

    let required = |d: u32| {
        let server = &server;
        async move {
            let path = format!("/api/v1/compliance?app=Editor&as_of=2026-03-{d:02}");
            let (status, p) = server.get(&path, &server.auditor).await;
            assert_eq!(status, 200, "{p}");
            let excluded: i64 = p[0]["excluded"]
                .as_array()
                .map_or(0, |x| x.iter().map(|r| r["count"].as_i64().unwrap()).sum());
            (p[0]["required"].as_i64().unwrap(), excluded)
        }
    };
    assert_eq!(
        required(5).await,
        (1, 0),
        "pc2's installation is dated 10 March"
    );
    assert_eq!(required(15).await, (2, 0), "both, pc1 still active");
    assert_eq!(required(25).await, (1, 1), "pc1 retired on 20 March");
    let (_, today) = server
        .get("/api/v1/compliance?app=Editor", &server.auditor)
        .await;
    assert_eq!(today[0]["required"], 1);
    // Nothing meters Editor: its installations on 5 March (pc1's only) are "no usage data".
    let (_, list) = server
        .get("/api/v1/reclaim?days=30&as_of=2026-03-05", &server.auditor)
        .await;
    assert_eq!(list["idle"], serde_json::json!([]), "{list}");
    assert_eq!(list["no_usage_data"][0]["installations"], 1, "{list}");
}

/// Runs the `record_usage_sessions` task and returns how many sessions it wrote.
async fn record_sessions(server: &common::TestServer) -> i64 {
    let (status, state) = server.run_task("record_usage_sessions").await;
    assert_eq!(
        (status, &state["last_error"]),
        (200, &serde_json::Value::Null),
        "{state}"
    );
    assert_eq!(state["pending_records"], 0, "{state}");
    state["last_rows"].as_i64().unwrap()
}

async fn the_agents_runs_count_for_the_user_and_concurrent_metrics(backend: Backend) {
    let server = start_with_code_rule(backend).await;
    for (name, metric) in [("Code users", "users"), ("Code peak", "concurrent_users")] {
        let app = serde_json::json!({"name": name, "metric": metric, "metering_rule": "Code"});
        let (status, body) = server.post_as_admin("/api/v1/applications", app).await;
        assert_eq!(status, 200, "{body}");
    }
    let (west, _) = server.enroll("west").await;
    let (east, _) = server.enroll("east").await;
    // Yesterday: ann on west 09:10–09:30 (still running) and 09:30–09:50, reported in two
    // cycles; bob on east 09:40–10:10. Both ran in the 09:00 hour: a peak of 2.
    let day = (chrono::Utc::now() - chrono::Duration::days(1)).date_naive();
    let t = |h: u32, m: u32| day.and_hms_opt(h, m, 0).unwrap().and_utc().to_rfc3339();
    let mut first = record("r1", "ann", 0, &t(9, 10), &t(9, 30));
    first["still_running"] = serde_json::json!(true);
    let mut second = record("r1", "ann", 0, &t(9, 30), &t(9, 50));
    second["started"] = serde_json::json!(false);
    upload(&server, &west, "w1", vec![first]).await;
    upload(&server, &west, "w2", vec![second]).await;
    upload(
        &server,
        &east,
        "e1",
        vec![record("r2", "bob", 0, &t(9, 40), &t(10, 10))],
    )
    .await;

    assert_eq!(
        record_sessions(&server).await,
        4,
        "two runs, each for two applications"
    );
    assert_eq!(record_sessions(&server).await, 0, "nothing new");
    let position = |app: &'static str| {
        let server = &server;
        async move {
            let path = format!("/api/v1/compliance?app={app}&as_of={day}");
            let (status, p) = server.get(&path, &server.auditor).await;
            assert_eq!(status, 200, "{p}");
            p[0]["required"].as_i64().unwrap()
        }
    };
    assert_eq!(position("Code%20users").await, 2);
    assert_eq!(position("Code%20peak").await, 2);

    // A later report on ann's run grows its session rather than adding one.
    let mut third = record("r1", "ann", 0, &t(9, 50), &t(11, 30));
    third["started"] = serde_json::json!(false);
    upload(&server, &west, "w3", vec![third]).await;
    assert_eq!(record_sessions(&server).await, 2);
    let apps = server.store.applications().await.unwrap();
    let users_app = apps
        .iter()
        .find(|a| a.application.name == "Code users")
        .unwrap();
    let from = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let sessions = server
        .store
        .sessions(
            users_app.application.id,
            (from, from + chrono::Duration::days(1)),
        )
        .await
        .unwrap();
    let ends: Vec<String> = sessions.iter().map(|s| s.end_time.to_rfc3339()).collect();
    assert_eq!(sessions.len(), 2, "{ends:?}");
    assert!(ends.contains(&t(11, 30)), "{ends:?}");
    assert!(sessions
        .iter()
        .any(|s| s.start_time.to_rfc3339() == t(9, 10)));
    assert_eq!(position("Code%20peak").await, 2);
}

/// Four devices on no node, one in Berlin, one retired; an organisation license of 2 on the
/// root (HQ) and a site license of 3 on Berlin. The root's license covers two unplaced
/// devices (the whole organisation, placed or not); Berlin's covers its one device and idles
/// two while two unplaced devices stay uncovered, and says why. The summary counts; the
/// detail names, a page at a time.
async fn the_summary_counts_and_explains_and_the_detail_names_a_page_at_a_time(backend: Backend) {
    use tally_core::import::{DeviceRow, OrgNodeRow};
    let server = start(backend).await;
    let device = |host: &str, node: Option<&str>, status| DeviceRow {
        host_name: host.into(),
        org_node: node.map(String::from),
        status: Some(status),
        ..DeviceRow::default()
    };
    let active = tally_core::DeviceStatus::Active;
    let hosts = ["a1", "a2", "a3", "a4", "b1", "old"];
    let license = |quantity, to, node: &str, cost: &str| LicenseRow {
        assigned_to: Some(node.into()),
        unit_cost: Some(cost.into()),
        currency: Some("EUR".into()),
        ..LicenseRow::new("Editor", Metric::Installations, quantity, to)
    };
    let batch = Batch {
        org_nodes: vec![
            (
                at(2),
                OrgNodeRow {
                    name: "HQ".into(),
                    parent: None,
                },
            ),
            (
                at(3),
                OrgNodeRow {
                    name: "Berlin".into(),
                    parent: Some("HQ".into()),
                },
            ),
        ],
        devices: vec![
            (at(2), device("a1", None, active)),
            (at(3), device("a2", None, active)),
            (at(4), device("a3", None, active)),
            (at(5), device("a4", None, active)),
            (at(6), device("b1", Some("Berlin"), active)),
            (
                at(7),
                device("old", None, tally_core::DeviceStatus::Retired),
            ),
        ],
        applications: vec![(at(2), editor())],
        installations: hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let row = InstallationRow {
                    host_name: (*h).into(),
                    software: "editor".into(),
                    version: "2".into(),
                    publisher: "Acme".into(),
                    installed_on: None,
                };
                (at(i + 2), row)
            })
            .collect(),
        licenses: vec![
            (at(2), license(2, AssignmentType::Organization, "HQ", "100")),
            (at(3), license(3, AssignmentType::Site, "Berlin", "10")),
        ],
        ..Default::default()
    };
    let known = server.store.import_known().await.unwrap();
    let problems = tally_core::import::validate(&batch, &known, chrono::Utc::now());
    assert!(problems.is_empty(), "{problems:?}");
    server.import(&batch, chrono::Utc::now()).await;

    let (status, positions) = server.get("/api/v1/compliance", &server.auditor).await;
    assert_eq!(status, 200, "{positions}");
    let p = &positions[0];
    let figures = ["required", "covered", "shortfall", "surplus"].map(|k| p[k].as_i64());
    assert_eq!(figures, [Some(5), Some(3), Some(2), Some(2)], "{p}");
    // Counts, not lists: the summary's size does not grow with the estate.
    assert_eq!(
        p["uncovered"],
        serde_json::json!({"devices": 2, "users": 0, "custom_values": 0})
    );
    assert!(p.get("uncovered_consumers").is_none(), "{p}");
    assert_eq!(p["excluded"][0]["short"], "retired");
    assert_eq!(p["excluded"][0]["count"], 1);
    assert_eq!(
        p["surplus_value"],
        serde_json::json!([{"minor": 2000, "currency": "EUR"}]),
        "Berlin's 2 idle units at 10.00 EUR"
    );
    assert_eq!(
        p["reason"],
        "2 uncovered devices; 1 license idle, uncovered demand outside its assignment; \
         1 excluded (retired)"
    );

    let detail = |query: &str| {
        let server = &server;
        let path = format!("/api/v1/compliance/detail?{query}");
        async move { server.get(&path, &server.auditor).await }
    };
    let (status, d) = detail("app=editor&limit=1&offset=1").await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["required"], 5, "the detail carries the summary");
    let page = &d["uncovered_consumers"];
    assert_eq!(
        (page["total"].as_i64(), page["limit"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(page["items"][0]["name"], "a4", "{page}");
    assert_eq!(page["items"][0]["org_node_name"], "(no node)");
    assert_eq!(page["items"][0]["missing"], 1);
    assert_eq!(d["excluded_consumers"]["total"], 1);
    let berlin = entry(&d["licenses"], "assigned_to_name", "Berlin");
    assert_eq!(berlin["label"], "installations × 3, site Berlin");
    assert_eq!(
        (berlin["used"].as_i64(), berlin["idle"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        berlin["reason"],
        "covers only devices on node Berlin; 2 uncovered devices are on no org node"
    );
    assert_eq!(berlin["note"]["kind"], "out_of_scope");
    let nodes = strings(&d["by_node"], "org_node_name");
    assert_eq!(nodes, ["(no node)", "Berlin"], "{}", d["by_node"]);

    for bad in [
        "app=editor&limit=0",
        "app=editor&limit=1001",
        "app=editor&offset=-1",
        "limit=5",
    ] {
        let (status, body) = detail(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = detail("app=Nope").await;
    assert_eq!(status, 404);
}
