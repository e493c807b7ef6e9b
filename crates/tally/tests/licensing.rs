//! `tally import` of a small estate in CSV and JSON into a running `tally up`, then the
//! position through `tally compliance`; a bad file is refused with its file, line and field,
//! and loads nothing. On SQLite and on PostgreSQL.

mod common;

use std::path::Path;

use common::json::{entry, strings};
use common::{
    assert_ok, assert_stderr_has, audit_actions, import, run_task, tally, tally_json, up_on, write,
    Backend,
};

each_backend!(
    an_imported_estate_shows_its_compliance_and_bad_files_load_nothing,
    applications_and_licenses_are_added_and_removed_with_the_seed_checks,
    org_rules_place_devices_nobody_placed_and_licenses_follow,
    licenses_are_named_edited_warned_about_and_expire,
    removed_licenses_and_applications_stay_in_past_positions,
    imports_check_the_stored_tree_name_every_field_and_say_where_data_went,
);

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
    assert_ok(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with(
            "Imported 2 org nodes, 3 devices, 2 users, 2 applications, 3 installations, \
             2 usage sessions and 3 licenses into "
        ),
        "{said}"
    );

    // Office: pc3 is retired, so 2 installations; pc1 is covered by the Sales license, pc2
    // by its 4-core license. Chat: ann used it; the backup account is a service account.
    let positions = tally_json(
        &server,
        &server.token,
        &["compliance", "--as-of", "2026-03-20"],
    );
    let position = |app: &str| entry(&positions, "application", app).clone();
    let office = position("Office");
    assert_eq!(
        (office["required"].as_i64(), office["covered"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(office["status"], "compliant");
    assert_eq!(
        office["excluded"][0]["reason"],
        "device status retired is not relevant for license compliance"
    );
    let chat = position("Chat");
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

    // Nothing meters Office (no sessions, no metering rule names it): its two relevant
    // installations are "no usage data", never unused and with no cost claimed (old code
    // listed both as never used at 99.50 EUR each); retired pc3 is in neither part.
    let args = ["reclaim", "--days", "30", "--as-of", "2026-03-20"];
    let list = tally_json(&server, &server.token, &args);
    let idle_apps = strings(&list["idle"], "application");
    assert!(!idle_apps.contains(&"Office"), "{list}");
    let office = list["no_usage_data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["application"] == "Office")
        .unwrap_or_else(|| panic!("Office has no usage data: {list}"));
    assert_eq!(office["installations"], 2, "{list}");
    // The table shows both parts, the second under its own heading.
    let out = tally(&server, &server.token, &args);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(
        table.contains("installations whose use is known have not run since")
            && table.contains("No usage data (not counted as unused, no cost claimed):"),
        "{table}"
    );
    let office_line = table.lines().find(|l| l.starts_with("Office")).unwrap();
    assert!(office_line.contains("nothing meters it"), "{table}");
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
    assert!(stderr.contains("error: 1 problem found;"), "{stderr}");
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
        assert_ok(&run);
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
    assert_ok(&check);

    // Loaded into a database no server has started on, it exports byte for byte the same.
    let fresh = dir.join("fresh-data");
    let fresh_db = backend.fresh_like();
    let load = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["import", "--create"])
        .args(&files)
        .args(["--data-dir", fresh.to_str().unwrap()])
        .args(fresh_db.db_args())
        .output()
        .unwrap();
    assert_ok(&load);
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
    assert_ok(&run);
    for file in &files {
        let name = Path::new(file).file_name().unwrap();
        assert_eq!(
            std::fs::read_to_string(file).unwrap(),
            std::fs::read_to_string(again.join(name)).unwrap(),
            "{name:?}"
        );
    }
    let elsewhere = import(dir, backend, &files[..1], &["--site-code", "XYZ"]);
    assert_stderr_has(
        &elsewhere,
        "site XYZ is not in this database; pass --site-code with one of: S01",
    );

    let json = export("json");
    let sessions: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json.join("usage_sessions.json")).unwrap()).unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 2);
    assert_eq!(sessions[0]["start"], "2026-03-02T09:00:00Z");
    let devices: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json.join("devices.json")).unwrap()).unwrap();
    let pc3 = entry(&devices, "host_name", "pc3");
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
    let wrong_metric = run(&add_license(("Office", "users", "5", "organization"), &[]));
    assert!(!wrong_metric.status.success());
    assert_stderr_has(&wrong_metric, "400");
    assert_stderr_has(&wrong_metric, "installations");
    let wrong_assignment = run(&add_license(
        ("Office", "processor_cores", "8", "organization"),
        &[],
    ));
    assert!(
        stderr(&wrong_assignment)
            .contains("a processor_cores license may be assigned to: computer"),
        "{}",
        stderr(&wrong_assignment)
    );
    let unknown_app = run(&add_license(
        ("Nope", "installations", "1", "organization"),
        &[],
    ));
    assert_stderr_has(&unknown_app, "Nope");
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
        &add_license(
            ("Office", "installations", "10", "organization"),
            &[
                "--unit-cost",
                "12.50",
                "--currency",
                "EUR",
                "--valid-until",
                "2030-01-01",
            ],
        ),
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
    assert_stderr_has(&refused, "still has licenses");
    assert!(run(&["licenses", "remove", &license[0]["id"].to_string()])
        .status
        .success());
    assert!(run(&["apps", "remove", &app_id]).status.success());
    assert!(tally_json(&server, &admin, &["apps"])
        .as_array()
        .unwrap()
        .is_empty());
    let again = run(&["apps", "remove", &app_id]);
    assert!(
        stderr(&again).contains(&format!(
            "no application named \"{app_id}\"; see tally apps"
        )),
        "{}",
        stderr(&again)
    );
    let actions = audit_actions(&server);
    for action in [
        "application.put",
        "license.add",
        "license.delete",
        "application.delete",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
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
    assert_ok(&out);
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
    let lon01 = entry(&devices, "host_name", "lon-01");
    let id = lon01["id"].to_string();
    let placed = tally(
        &server,
        &admin,
        &["org", "place", "--device", &id, "--node", "HQ"],
    );
    assert_ok(&placed);
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
    assert_stderr_has(&both, "make two rules");
    let nowhere = tally(
        &server,
        &admin,
        &["org", "add-rule", "--node", "Mars", "--site", "S01"],
    );
    assert_stderr_has(&nowhere, "no org node named \"Mars\"");
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
    assert_ok(&out);
    let p = tally_json(&server, &admin, &["compliance", "--app", "Seats"]);
    assert_eq!(
        (p["required"].as_i64(), p["shortfall"].as_i64()),
        (Some(3), Some(1))
    );
    assert!(server.stop().success());
}

/// `licenses add` of (application, metric, quantity, assignment), then `more` options.
fn add_license<'a>(
    license: (&'a str, &'a str, &'a str, &'a str),
    more: &[&'a str],
) -> Vec<&'a str> {
    let (app, metric, quantity, assignment) = license;
    let mut args = vec!["licenses", "add", "--app", app, "--metric", metric];
    args.extend(["--quantity", quantity, "--assignment", assignment]);
    args.extend(more);
    args
}

/// A small estate for the license verbs: HQ with Sales below it, pc1 and ann there, Office
/// (installations) and Chat (users).
fn small_estate(dir: &Path, backend: &Backend) {
    let files = vec![
        write(dir, "org_nodes.csv", "name,parent\nHQ,\nSales,HQ\n"),
        write(
            dir,
            "devices.csv",
            "host_name,org_node\npc1,Sales\npc2,HQ\n",
        ),
        write(dir, "users.csv", "account,org_node\nann,Sales\n"),
        write(
            dir,
            "applications.csv",
            "name,metric,software\nOffice,installations,office*\nChat,users,\n",
        ),
        write(
            dir,
            "installations.csv",
            "host_name,software\npc1,office\npc2,office\n",
        ),
    ];
    let out = import(dir, backend, &files, &[]);
    assert_ok(&out);
}

fn licenses_are_named_edited_warned_about_and_expire(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = up_on(dir.path(), &backend);
    small_estate(dir.path(), &backend);
    let admin = server.token.clone();
    let run = |args: &[&str]| tally(&server, &admin, args);
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    let today = chrono::Utc::now().date_naive();
    let in_days = |n: i64| (today + chrono::Duration::days(n)).to_string();

    // Allowed values are offered, not typed; the British spelling is read; a negative
    // quantity reaches the server's refusal instead of being taken for a flag.
    let help = text(&run(&["licenses", "add", "--help"]).stdout);
    assert!(!help.contains("datacenter"), "{help}");
    assert!(
        help.contains("[possible values: organization, site, computer, user]"),
        "{help}"
    );
    assert!(
        help.contains("installations, custom_compare_values"),
        "{help}"
    );
    assert!(!help.contains("no_license_required"), "{help}");
    assert!(
        help.contains("How many units of the metric were bought"),
        "{help}"
    );
    assert!(help.contains("The first day it counts"), "{help}");
    let typo = run(&add_license(
        ("Office", "installations", "1", "datacenter"),
        &[],
    ));
    assert_stderr_has(&typo, "invalid value 'datacenter' for '--assignment");
    let negative = run(&add_license(
        ("Office", "installations", "-2", "organisation"),
        &[],
    ));
    assert!(!negative.status.success());
    assert_stderr_has(&negative, "quantity: must not be negative");

    // Quantities that cannot be used are accepted with a warning the user sees.
    let two_for_one = run(&add_license(
        ("Office", "installations", "2", "computer"),
        &[
            "--to",
            "pc1",
            "--unit-cost",
            "1449",
            "--currency",
            "EUR",
            "--valid-until",
            &in_days(30),
            "--maintenance-until",
            &in_days(10),
        ],
    ));
    assert_ok(&two_for_one);
    assert!(
        text(&two_for_one.stderr).contains(
            "warning: this installations license is assigned to computer \"pc1\" and covers the \
             one installation on that computer: 1 of its 2 units can be used, 1 never"
        ),
        "{}",
        text(&two_for_one.stderr)
    );
    let none = tally_json(
        &server,
        &admin,
        &add_license(
            ("Office", "installations", "0", "organisation"),
            &["--to", "HQ", "--valid-until", &in_days(200)],
        ),
    );
    assert_eq!(none[0]["assignment_type"], "organization");
    assert_eq!(none[0]["assigned_to_name"], "HQ");
    assert!(
        none[0]["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("quantity 0 covers nothing"),
        "{none}"
    );
    // Over HTTP the answer carries the warnings too: here a currency unlike the others'.
    let usd: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/licenses", server.url))
        .bearer_auth(&admin)
        .json(
            &serde_json::json!({"application": "Office", "metric": "installations",
            "quantity": 5, "assignment_type": "organization", "unit_cost": "10",
            "currency": "USD"}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        usd["warnings"],
        serde_json::json!([
            "USD differs from the currency of \"Office\"'s other licenses (EUR): costs in \
             different currencies are shown apart and never added together"
        ])
    );
    assert_eq!(
        usd["label"],
        format!("#{} Office, 5 installations", usd["id"])
    );

    // Names, not ids: the application, what it is assigned to, money with its currency.
    let table = text(&run(&["licenses"]).stdout);
    assert!(!table.contains("APPLICATION_ID"), "{table}");
    assert!(
        table.starts_with(
            "ID  APPLICATION  METRIC         QUANTITY  ASSIGNED_TO         UNIT_COST     \
             VALID_FROM  VALID_UNTIL  MAINTENANCE_UNTIL"
        ),
        "{table}"
    );
    assert!(table.contains("computer pc1"), "{table}");
    assert!(table.contains("1,449.00 EUR"), "{table}");
    assert!(table.contains("organization HQ"), "{table}");
    assert!(table.contains("whole organisation"), "{table}");
    assert!(table.contains(&in_days(30)), "{table}");
    let nodes = text(&run(&["org", "nodes"]).stdout);
    assert!(
        nodes
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["2", "Sales", "HQ"]),
        "{nodes}"
    );
    let placed = run(&["org", "place", "--device", "PC1", "--node", "HQ"]);
    assert_stderr_has(&placed, "placed pc1 on HQ");
    run(&["org", "add-rule", "--node", "Sales", "--host-name", "pc*"]);
    let rules = text(&run(&["org", "rules"]).stdout);
    assert!(
        rules.lines().nth(1).unwrap().contains("Sales"),
        "the node by name: {rules}"
    );

    // Editing runs the same checks and warnings as adding.
    let id = usd["id"].to_string();
    let edited = tally_json(
        &server,
        &admin,
        &[
            "licenses",
            "edit",
            &id,
            "--quantity",
            "7",
            "--currency",
            "EUR",
            "--valid-until",
            &in_days(60),
        ],
    );
    assert_eq!(
        (
            edited[0]["quantity"].as_i64(),
            edited[0]["currency"].as_str()
        ),
        (Some(7), Some("EUR"))
    );
    assert_eq!(edited[0]["warnings"], serde_json::json!([]));
    assert_eq!(
        edited[0]["unit_cost_minor"], 1000,
        "what was not given stays"
    );
    let wrong = run(&["licenses", "edit", &id, "--metric", "users"]);
    assert!(
        text(&wrong.stderr)
            .contains("an application measured in installations accepts licenses of"),
        "{}",
        text(&wrong.stderr)
    );
    let moved = tally_json(
        &server,
        &admin,
        &[
            "licenses",
            "edit",
            &id,
            "--assignment",
            "computer",
            "--to",
            "pc2",
            "--quantity",
            "3",
        ],
    );
    assert_eq!(moved[0]["assigned_to_name"], "pc2");
    assert!(moved[0]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("1 of its 3 units"));
    let missing = run(&["licenses", "edit", "999", "--quantity", "1"]);
    assert_stderr_has(&missing, "404");

    // What ends within 90 days, soonest first: pc1's maintenance, then its validity, then
    // the edited license; the HQ license ends in 200 days.
    let ending = tally_json(&server, &admin, &["licenses", "expiring", "--days", "90"]);
    let seen: Vec<(String, String, i64)> = ending
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["ends"].as_str().unwrap().to_string(),
                e["ends_on"].as_str().unwrap().to_string(),
                e["days_left"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("maintenance".to_string(), in_days(10), 10),
            ("validity".to_string(), in_days(30), 30),
            ("validity".to_string(), in_days(60), 60),
        ]
    );
    let table = text(&run(&["licenses", "expiring"]).stdout);
    assert!(table.starts_with("ENDS_ON"), "{table}");
    assert!(table.contains("#1 Office, 2 installations"), "{table}");
    let refused = run(&["licenses", "expiring", "--days", "-1"]);
    assert_stderr_has(&refused, "days: give 0 to 3660");

    // A date the server cannot read is named as such, in the server's words.
    let bad_day = run(&["compliance", "--as-of", "2026-13-45"]);
    assert!(
        text(&bad_day.stderr)
            .contains("400 Bad Request: as_of: 2026-13-45 is not a date (YYYY-MM-DD)"),
        "{}",
        text(&bad_day.stderr)
    );
    let actions = audit_actions(&server);
    assert!(actions.contains(&"license.edit".to_string()), "{actions:?}");
    assert!(server.stop().success());
}

fn removed_licenses_and_applications_stay_in_past_positions(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = up_on(dir.path(), &backend);
    small_estate(dir.path(), &backend);
    let admin = server.token.clone();
    let run = |args: &[&str]| tally(&server, &admin, args);
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    let owned = |app: &str, day: Option<&str>| {
        let mut args = vec!["compliance", "--app", app];
        args.extend(day.map(|d| ["--as-of", d]).into_iter().flatten());
        // `--app` prints the application's detail, its figures at the top level.
        tally_json(&server, &admin, &args)["owned"]
            .as_i64()
            .unwrap()
    };
    let license = tally_json(
        &server,
        &admin,
        &add_license(("Office", "installations", "2", "organization"), &[]),
    );
    let chat = tally_json(
        &server,
        &admin,
        &add_license(("Chat", "users", "4", "organization"), &[]),
    );
    assert_eq!(
        (owned("Office", None), owned("Office", Some(&yesterday))),
        (2, 2)
    );
    run_task(&server, "snapshot_compliance");

    // Removed today: gone from today's position and lists, still in yesterday's.
    assert!(run(&["licenses", "remove", &license[0]["id"].to_string()])
        .status
        .success());
    assert_eq!(owned("Office", None), 0);
    assert_eq!(
        owned("Office", Some(&yesterday)),
        2,
        "yesterday it was owned"
    );
    let listed = tally_json(&server, &admin, &["licenses"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // An application removed by name keeps its past positions and its snapshots.
    assert!(run(&["licenses", "remove", &chat[0]["id"].to_string()])
        .status
        .success());
    let removed = run(&["apps", "remove", "chat"]);
    assert_ok(&removed);
    let apps = tally_json(&server, &admin, &["apps"]);
    assert_eq!(strings(&apps, "name"), ["Office"]);
    assert_eq!(owned("Chat", Some(&yesterday)), 4);
    let today = run(&["compliance", "--app", "Chat"]);
    assert_stderr_has(&today, "no application named \"Chat\"");
    let trend = tally_json(&server, &admin, &["compliance", "--trend", "--app", "Chat"]);
    assert_eq!(trend[0]["application"], "Chat", "{trend}");
    assert_eq!(trend[0]["owned"], 4, "{trend}");
    let unknown = run(&["apps", "remove", "Nothing"]);
    assert_stderr_has(&unknown, "no application named \"Nothing\"");
    let actions = audit_actions(&server);
    assert!(actions.contains(&"application.delete".to_string()));
    // Added again, it is the same application back.
    tally_json(
        &server,
        &admin,
        &["apps", "add", "Chat", "--metric", "users"],
    );
    assert_eq!(
        strings(&tally_json(&server, &admin, &["apps"]), "name"),
        ["Chat", "Office"]
    );
    assert!(server.stop().success());
}

fn imports_check_the_stored_tree_name_every_field_and_say_where_data_went(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).to_string();

    // Nothing here yet: no new database nobody reads unless asked for.
    let nodes = write(
        dir.path(),
        "org_nodes.csv",
        "name,parent\nHQ,\nSales,HQ\nEast,Sales\n",
    );
    if matches!(backend, Backend::Sqlite) {
        let refused = import(dir.path(), &backend, std::slice::from_ref(&nodes), &[]);
        assert!(!refused.status.success());
        assert_stderr_has(&refused, "there is no database at ");
        assert_stderr_has(&refused, "--create");
        assert!(
            !dir.path().join("tally-data").exists(),
            "nothing was created"
        );
    }
    let made = import(dir.path(), &backend, &[nodes], &["--create"]);
    assert_ok(&made);
    let said = String::from_utf8_lossy(&made.stdout).to_string();
    let whereto = match &backend {
        Backend::Sqlite => format!(
            "sqlite://{}",
            dir.path().join("tally-data").join("tally.db").display()
        ),
        Backend::Postgres(db) => db.url.clone(),
    };
    assert_eq!(said.trim(), format!("Imported 3 org nodes into {whereto}"));

    // A parent cycle through the stored tree is refused, by --check as by the import.
    let cycle = write(dir.path(), "cycle-org_nodes.csv", "name,parent\nHQ,East\n");
    for extra in [&["--check"][..], &[]] {
        let out = import(dir.path(), &backend, std::slice::from_ref(&cycle), extra);
        assert!(!out.status.success(), "{extra:?}");
        assert!(
            stderr(&out).contains(
                "cycle-org_nodes.csv:2: parent: the parents form a cycle; a node cannot be below itself"
            ),
            "{}",
            stderr(&out)
        );
        assert_stderr_has(&out, "error: 1 problem found;");
    }

    // Every field's problem is named, each by its field, in CSV and in JSON.
    let devices = write(
        dir.path(),
        "devices.csv",
        "host_name,status,sockets,cores\npc1,broken,two,4\npc2,active,1\n",
    );
    let out = import(dir.path(), &backend, &[devices], &[]);
    let said = stderr(&out);
    assert!(
        said.contains("devices.csv:2: status: unknown variant `broken`"),
        "{said}"
    );
    assert!(
        said.contains("devices.csv:2: sockets: invalid digit found in string"),
        "{said}"
    );
    assert!(
        said.contains(
            "devices.csv:3: cores: the row has 3 of the header's 4 columns; missing: cores"
        ),
        "{said}"
    );
    assert!(said.contains("error: 3 problems found;"), "{said}");
    assert!(!said.contains(": -: "), "{said}");
    let json = write(
        dir.path(),
        "users.json",
        r#"[{"full_name": "Ann", "status": "gone", "service_account": "no"}]"#,
    );
    let said = stderr(&import(dir.path(), &backend, &[json], &[]));
    assert!(
        said.contains("users.json:1: status: unknown variant `gone`"),
        "{said}"
    );
    assert!(
        said.contains("users.json:1: service_account: invalid type"),
        "{said}"
    );
    assert!(
        said.contains("users.json:1: account: is required"),
        "{said}"
    );
    assert!(!said.contains(": -: "), "{said}");

    // Licenses that cannot be used in full load with a warning per row.
    let files = vec![
        write(
            dir.path(),
            "applications.csv",
            "name,metric\nOffice,installations\n",
        ),
        write(
            dir.path(),
            "licenses.csv",
            "application,metric,quantity,assignment_type,assigned_to\n\
             Office,installations,0,organisation,HQ\nOffice,installations,3,organization,\n",
        ),
    ];
    let out = import(dir.path(), &backend, &files, &[]);
    assert_ok(&out);
    assert!(
        stderr(&out).starts_with("warning: ")
            && stderr(&out).contains("licenses.csv:2: quantity: quantity 0 covers nothing"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("licenses.csv:3"), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("Imported 1 application and 2 licenses into "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
