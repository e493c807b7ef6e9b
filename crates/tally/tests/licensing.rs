//! `tally import` of a small estate in CSV and JSON into a running `tally up`, then the
//! position through `tally compliance`; a bad file is refused with its file, line and field,
//! and loads nothing. On SQLite and on PostgreSQL.

mod common;

use std::path::Path;

use common::json::strings;
use common::{run_task, tally, tally_json, up_on, Backend};

each_backend!(
    an_imported_estate_shows_its_compliance_and_bad_files_load_nothing,
    applications_and_licenses_are_added_and_removed_with_the_seed_checks,
    org_rules_place_devices_nobody_placed_and_licenses_follow,
);

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn import(dir: &Path, backend: &Backend, files: &[String], extra: &[&str]) -> std::process::Output {
    let data = dir.join("tally-data");
    std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("import")
        .args(files)
        .args(["--data-dir", data.to_str().unwrap()])
        .args(backend.db_args())
        .args(extra)
        .output()
        .unwrap()
}

fn an_imported_estate_shows_its_compliance_and_bad_files_load_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = up_on(dir.path(), &backend);
    let files = vec![
        write(dir.path(), "org_nodes.csv", "name,parent\nSales,HQ\nHQ,\n"),
        write(
            dir.path(),
            "devices.csv",
            "host_name,org_node,status,sockets,cores\n\
             pc1,Sales,active,1,4\npc2,HQ,active,1,4\npc3,HQ,retired,1,4\n",
        ),
        write(
            dir.path(),
            "users.csv",
            "account,full_name,service_account\nann,Ann Smith,false\nbackup,,true\n",
        ),
        write(
            dir.path(),
            "applications.json",
            r#"[{"name": "Office", "publisher": "Contoso", "metric": "installations", "software": "office*"},
                {"name": "Chat", "metric": "users"}]"#,
        ),
        write(
            dir.path(),
            "installations.csv",
            "host_name,software,version\npc1,office-suite,16\npc2,office-suite,16\npc3,office-suite,16\n",
        ),
        write(
            dir.path(),
            "usage_sessions.csv",
            "application,host_name,account,start,end\n\
             Chat,pc1,ann,2026-03-02T09:00:00Z,2026-03-02T10:00:00Z\n\
             Chat,pc2,backup,2026-03-02T09:00:00Z,2026-03-02T10:00:00Z\n",
        ),
        write(
            dir.path(),
            "licenses.csv",
            "application,metric,quantity,assignment_type,assigned_to,unit_cost,currency\n\
             Office,installations,1,organization,Sales,99.50,EUR\n\
             Office,processor_cores,4,computer,pc2,,\n\
             Chat,users,1,organization,,,\n",
        ),
    ];
    let out = import(dir.path(), &backend, &files, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (outcome["devices"].as_i64(), outcome["licenses"].as_i64()),
        (Some(3), Some(3))
    );

    // Office: pc3 is retired, so 2 installations; pc1 is covered by the Sales license, pc2
    // by its 4-core license. Chat: ann used it; the backup account is a service account.
    let positions = tally_json(
        &server,
        &server.token,
        &["compliance", "--as-of", "2026-03-20"],
    );
    let office = &positions
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["application"] == "Office")
        .unwrap();
    assert_eq!(
        (office["required"].as_i64(), office["covered"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(office["status"], "compliant");
    assert_eq!(
        office["excluded"][0]["reason"],
        "device status retired is not relevant for license compliance"
    );
    let chat = &positions
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["application"] == "Chat")
        .unwrap();
    assert_eq!(
        (chat["required"].as_i64(), chat["covered"].as_i64()),
        (Some(1), Some(1))
    );
    // In February nobody had used Chat yet: the license is surplus.
    let feb = tally_json(
        &server,
        &server.token,
        &["compliance", "--app", "chat", "--as-of", "2026-02-20"],
    );
    assert_eq!(
        (feb["required"].as_i64(), feb["status"].as_str()),
        (Some(0), Some("over_licensed"))
    );

    // Nobody ran Office (no sessions, no metering rule): both relevant installations are
    // idle and each ties up one installation license at 99.50 EUR; retired pc3 is not listed.
    let idle = tally_json(
        &server,
        &server.token,
        &["reclaim", "--days", "30", "--as-of", "2026-03-20"],
    );
    let hosts = strings(&idle, "host_name");
    assert_eq!(hosts, ["pc1", "pc2"]);
    assert_eq!(idle[0]["cost"]["minor"], 9950);
    assert_eq!(idle[0]["last_used"], serde_json::Value::Null);
    let snapshot = run_task(&server, "snapshot_compliance");
    assert_eq!(snapshot[0]["last_rows"], 2, "one row per application");
    // Today's figures, kept for the trend: Chat's user license is unused today.
    let trend = tally_json(
        &server,
        &server.token,
        &["compliance", "--trend", "--app", "chat"],
    );
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(
        (
            &trend[0]["day"],
            &trend[0]["application"],
            &trend[0]["owned"]
        ),
        (
            &serde_json::json!(today),
            &serde_json::json!("Chat"),
            &serde_json::json!(1)
        ),
        "{trend}"
    );
    assert_eq!(trend.as_array().unwrap().len(), 1, "{trend}");
    let later = tally_json(
        &server,
        &server.token,
        &["compliance", "--trend", "--since", "2999-01-01"],
    );
    assert_eq!(later, serde_json::json!([]));

    // A core license on the whole organisation is not allowed, and a device is unknown: both
    // are named, and nothing of the file is loaded.
    let bad = vec![write(
        dir.path(),
        "more-licenses.csv",
        "application,metric,quantity,assignment_type,assigned_to\n\
         Office,installations,10,organization,\n\
         Office,processor_cores,8,organization,\n\
         Office,installations,1,computer,pc9\n",
    )];
    let out = import(dir.path(), &backend, &bad, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("more-licenses.csv:3: assignment_type: a processor_cores license may be assigned to: computer"), "{stderr}");
    assert!(
        stderr.contains("more-licenses.csv:4: assigned_to: no computer named \"pc9\""),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was loaded"), "{stderr}");
    let licenses = tally_json(&server, &server.token, &["licenses"]);
    assert_eq!(
        licenses.as_array().unwrap().len(),
        3,
        "the good row of the bad file was not loaded"
    );
    let out = import(dir.path(), &backend, &bad[..], &["--check"]);
    assert!(!out.status.success(), "--check reports the same problems");
    let unknown = import(
        dir.path(),
        &backend,
        &[write(dir.path(), "stuff.csv", "a\n1\n")],
        &[],
    );
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("name the file after what it holds"));
    // JSON is read an object at a time: a bad object is named by its place in the array, and
    // a file that is not an array, or breaks off, is refused whole.
    let json = write(
        dir.path(),
        "late-usage_sessions.json",
        r#"[{"application": "Chat", "host_name": "pc1", "account": "ann",
             "start": "2026-03-03T09:00:00Z", "end": "2026-03-03T10:00:00Z"},
            {"application": "Chat", "host_name": "pc1", "account": "ann", "start": "soon"}]"#,
    );
    let out = import(dir.path(), &backend, &[json], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("late-usage_sessions.json:2: start: "),
        "{stderr}"
    );
    assert!(stderr.contains("1 problems found"), "{stderr}");
    for (name, text) in [
        ("object-devices.json", r#"{"host_name": "pc7"}"#),
        ("cut-devices.json", r#"[{"host_name": "pc7"}, {"host_na"#),
    ] {
        let out = import(dir.path(), &backend, &[write(dir.path(), name, text)], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{name}: not a JSON array of objects")),
            "{stderr}"
        );
    }
    let devices = tally_json(&server, &server.token, &["devices"]);
    assert!(
        !devices.to_string().contains("pc7"),
        "nothing of a refused file is loaded: {devices}"
    );
    exported_files_read_back(dir.path(), &backend);
    let table = tally(
        &server,
        &server.token,
        &["compliance", "--as-of", "2026-03-20"],
    );
    assert!(String::from_utf8_lossy(&table.stdout).contains("Office"));
    assert!(server.stop().success());
}

/// `tally export` writes every kind in both formats, names rather than ids, and what it writes
/// passes `tally import --check` against the database it came from.
fn exported_files_read_back(dir: &Path, backend: &Backend) {
    let data = dir.join("tally-data");
    let export = |format: &str| {
        let out = dir.join(format!("export-{format}"));
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(["export", "--format", format, "--out", out.to_str().unwrap()])
            .args(["--data-dir", data.to_str().unwrap()])
            .args(backend.db_args())
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        out
    };
    let csv = export("csv");
    let licenses = std::fs::read_to_string(csv.join("licenses.csv")).unwrap();
    let mut lines = licenses.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("application,metric,quantity,assignment_type,assigned_to,"));
    assert!(
        licenses.contains("Office,installations,1,organization,Sales,,,,,99.50,EUR,,,"),
        "{licenses}"
    );
    assert!(
        licenses.contains("Office,processor_cores,4,computer,pc2,"),
        "{licenses}"
    );
    assert_eq!(lines.count(), 3);
    let files: Vec<String> = [
        "org_nodes",
        "devices",
        "users",
        "applications",
        "installations",
        "usage_sessions",
        "licenses",
        "custom_values",
    ]
    .iter()
    .map(|k| csv.join(format!("{k}.csv")).display().to_string())
    .collect();
    let check = import(dir, backend, &files, &["--check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // Loaded into a database no server has started on, it exports byte for byte the same.
    let fresh = dir.join("fresh-data");
    let fresh_db = backend.fresh_like();
    let load = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("import")
        .args(&files)
        .args(["--data-dir", fresh.to_str().unwrap()])
        .args(fresh_db.db_args())
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let again = dir.join("export-again");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "export",
            "--out",
            again.to_str().unwrap(),
            "--data-dir",
            fresh.to_str().unwrap(),
        ])
        .args(fresh_db.db_args())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for file in &files {
        let name = Path::new(file).file_name().unwrap();
        assert_eq!(
            std::fs::read_to_string(file).unwrap(),
            std::fs::read_to_string(again.join(name)).unwrap(),
            "{name:?}"
        );
    }
    let elsewhere = import(dir, backend, &files[..1], &["--site-code", "XYZ"]);
    assert!(
        String::from_utf8_lossy(&elsewhere.stderr)
            .contains("site XYZ is not in this database; pass --site-code with one of: S01"),
        "{}",
        String::from_utf8_lossy(&elsewhere.stderr)
    );

    let json = export("json");
    let sessions: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json.join("usage_sessions.json")).unwrap()).unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 2);
    assert_eq!(sessions[0]["start"], "2026-03-02T09:00:00Z");
    let devices: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json.join("devices.json")).unwrap()).unwrap();
    let pc3 = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["host_name"] == "pc3")
        .unwrap();
    assert_eq!(
        (pc3["status"].as_str(), pc3["org_node"].as_str()),
        (Some("retired"), Some("HQ"))
    );
}

fn applications_and_licenses_are_added_and_removed_with_the_seed_checks(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = up_on(dir.path(), &backend);
    let admin = server.token.clone();
    let run = |args: &[&str]| tally(&server, &admin, args);
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).to_string();

    let app = tally_json(
        &server,
        &admin,
        &[
            "apps",
            "add",
            "Office",
            "--metric",
            "installations",
            "--publisher",
            "Contoso",
            "--software",
            "office*",
        ],
    );
    assert_eq!(
        (app[0]["name"].as_str(), app[0]["metric"].as_str()),
        (Some("Office"), Some("installations"))
    );
    let app_id = app[0]["id"].as_i64().unwrap();
    // Adding it again changes it rather than making a second one.
    tally_json(
        &server,
        &admin,
        &[
            "apps",
            "add",
            "Office",
            "--metric",
            "installations",
            "--period-days",
            "30",
        ],
    );
    assert_eq!(
        tally_json(&server, &admin, &["apps"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Seed 002: an installations application does not take user licenses, and a core
    // license may only be assigned to a computer. Each refusal names what is allowed.
    let wrong_metric = run(&[
        "licenses",
        "add",
        "--app",
        "Office",
        "--metric",
        "users",
        "--quantity",
        "5",
        "--assignment",
        "organization",
    ]);
    assert!(!wrong_metric.status.success());
    assert!(
        stderr(&wrong_metric).contains("400"),
        "{}",
        stderr(&wrong_metric)
    );
    assert!(
        stderr(&wrong_metric).contains("installations"),
        "{}",
        stderr(&wrong_metric)
    );
    let wrong_assignment = run(&[
        "licenses",
        "add",
        "--app",
        "Office",
        "--metric",
        "processor_cores",
        "--quantity",
        "8",
        "--assignment",
        "organization",
    ]);
    assert!(
        stderr(&wrong_assignment)
            .contains("a processor_cores license may be assigned to: computer"),
        "{}",
        stderr(&wrong_assignment)
    );
    let unknown_app = run(&[
        "licenses",
        "add",
        "--app",
        "Nope",
        "--metric",
        "installations",
        "--quantity",
        "1",
        "--assignment",
        "organization",
    ]);
    assert!(
        stderr(&unknown_app).contains("Nope"),
        "{}",
        stderr(&unknown_app)
    );
    assert!(
        tally_json(&server, &admin, &["licenses"])
            .as_array()
            .unwrap()
            .is_empty(),
        "refusals stored nothing"
    );

    let license = tally_json(
        &server,
        &admin,
        &[
            "licenses",
            "add",
            "--app",
            "Office",
            "--metric",
            "installations",
            "--quantity",
            "10",
            "--assignment",
            "organization",
            "--unit-cost",
            "12.50",
            "--currency",
            "EUR",
            "--valid-until",
            "2030-01-01",
        ],
    );
    assert_eq!(
        (
            license[0]["application_id"].as_i64(),
            license[0]["unit_cost_minor"].as_i64()
        ),
        (Some(app_id), Some(1250))
    );
    let position = tally_json(&server, &admin, &["compliance", "--app", "Office"]);
    assert_eq!(position["owned"], 10);

    // An auditor reads but does not change.
    let auditor = tally_json(
        &server,
        &admin,
        &["tokens", "create", "--name", "audit", "--role", "auditor"],
    );
    let auditor = auditor[0]["token"].as_str().unwrap();
    let denied = tally(
        &server,
        auditor,
        &["licenses", "remove", &license[0]["id"].to_string()],
    );
    assert!(stderr(&denied).contains("403"), "{}", stderr(&denied));

    // An application with licenses stays until they are removed.
    let app_id = app_id.to_string();
    let refused = run(&["apps", "remove", &app_id]);
    assert!(
        stderr(&refused).contains("still has licenses"),
        "{}",
        stderr(&refused)
    );
    assert!(run(&["licenses", "remove", &license[0]["id"].to_string()])
        .status
        .success());
    assert!(run(&["apps", "remove", &app_id]).status.success());
    assert!(tally_json(&server, &admin, &["apps"])
        .as_array()
        .unwrap()
        .is_empty());
    let again = run(&["apps", "remove", &app_id]);
    assert!(stderr(&again).contains("404"), "{}", stderr(&again));
    let audit: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/audit", server.url))
        .bearer_auth(&admin)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "application.put",
        "license.add",
        "license.delete",
        "application.delete",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(server.stop().success());
}

fn org_rules_place_devices_nobody_placed_and_licenses_follow(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = up_on(dir.path(), &backend);
    let admin = server.token.clone();
    let files = vec![
        write(dir.path(), "org_nodes.csv", "name,parent\nHQ,\nLondon,HQ\n"),
        write(
            dir.path(),
            "devices.csv",
            "host_name,org_node\nlon-01,\nLON-02,\npar-01,HQ\n",
        ),
        write(
            dir.path(),
            "applications.csv",
            "name,metric,software\nOffice,installations,office*\n",
        ),
        write(
            dir.path(),
            "installations.csv",
            "host_name,software\nlon-01,office\nLON-02,office\npar-01,office\n",
        ),
        write(
            dir.path(),
            "licenses.csv",
            "application,metric,quantity,assignment_type,assigned_to\n\
             Office,installations,2,site,London\nOffice,installations,1,organization,HQ\n",
        ),
    ];
    let out = import(dir.path(), &backend, &files, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let covered = || {
        let p = tally_json(
            &server,
            &admin,
            &["compliance", "--app", "Office", "--as-of", "2026-03-20"],
        );
        (
            p["covered"].as_i64().unwrap(),
            p["shortfall"].as_i64().unwrap(),
        )
    };
    // Nobody placed the London machines: only the HQ license (1) covers anything.
    assert_eq!(covered(), (1, 2));

    let rule = tally_json(
        &server,
        &admin,
        &[
            "org",
            "add-rule",
            "--node",
            "London",
            "--host-name",
            "lon-*",
        ],
    );
    assert_eq!(rule[0]["host_name"], "lon-*");
    // Both London machines (any case) now take the London site license.
    assert_eq!(covered(), (3, 0));
    let rules = tally_json(&server, &admin, &["org", "rules"]);
    assert_eq!(rules.as_array().unwrap().len(), 1);

    // By hand wins over the rule: lon-01 moved to HQ competes for the one HQ license.
    let devices = tally_json(&server, &admin, &["devices"]);
    let lon01 = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["host_name"] == "lon-01")
        .unwrap();
    let id = lon01["id"].to_string();
    let placed = tally(
        &server,
        &admin,
        &["org", "place", "--device", &id, "--node", "HQ"],
    );
    assert!(
        placed.status.success(),
        "{}",
        String::from_utf8_lossy(&placed.stderr)
    );
    assert_eq!(covered(), (2, 1));

    // Bad rules and unknown nodes are refused with what to do.
    let both = tally(
        &server,
        &admin,
        &[
            "org",
            "add-rule",
            "--node",
            "HQ",
            "--site",
            "S01",
            "--account",
            "a*",
        ],
    );
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("make two rules"),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
    let nowhere = tally(
        &server,
        &admin,
        &["org", "add-rule", "--node", "Mars", "--site", "S01"],
    );
    assert!(
        String::from_utf8_lossy(&nowhere.stderr).contains("no org node named \"Mars\""),
        "{}",
        String::from_utf8_lossy(&nowhere.stderr)
    );
    let remove = tally(
        &server,
        &admin,
        &["org", "remove-rule", &rules[0]["id"].to_string()],
    );
    assert!(remove.status.success());
    assert_eq!(
        covered(),
        (1, 2),
        "lon-01 by hand on HQ; LON-02 on no node again"
    );

    // Custom compare values: 3 seats counted in London, 2 licensed there.
    let seats = vec![
        write(dir.path(), "seats-applications.csv", "name,metric\nSeats,custom_compare_values\n"),
        write(dir.path(), "seats-custom_values.csv", "application,org_node,quantity\nSeats,London,3\n"),
        write(
            dir.path(),
            "seats-licenses.csv",
            "application,metric,quantity,assignment_type,assigned_to\nSeats,custom_compare_values,2,organization,London\n",
        ),
    ];
    let out = import(dir.path(), &backend, &seats, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = tally_json(&server, &admin, &["compliance", "--app", "Seats"]);
    assert_eq!(
        (p["required"].as_i64(), p["shortfall"].as_i64()),
        (Some(3), Some(1))
    );
    assert!(server.stop().success());
}
