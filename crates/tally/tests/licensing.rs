//! `tally import` of a small estate in CSV and JSON into a running `tally up`, then the
//! position through `tally compliance`; a bad file is refused with its file, line and field,
//! and loads nothing.

mod common;

use std::path::Path;

use common::{tally, tally_json, up};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn import(dir: &Path, files: &[String], extra: &[&str]) -> std::process::Output {
    let data = dir.join("tally-data");
    std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("import")
        .args(files)
        .args(["--data-dir", data.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn an_imported_estate_shows_its_compliance_and_bad_files_load_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
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
    let out = import(dir.path(), &files, &[]);
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
        (feb[0]["required"].as_i64(), feb[0]["status"].as_str()),
        (Some(0), Some("over_licensed"))
    );

    // Nobody ran Office (no sessions, no metering rule): both relevant installations are
    // idle and each ties up one installation license at 99.50 EUR; retired pc3 is not listed.
    let idle = tally_json(
        &server,
        &server.token,
        &["reclaim", "--days", "30", "--as-of", "2026-03-20"],
    );
    let hosts: Vec<_> = idle
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["host_name"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["pc1", "pc2"]);
    assert_eq!(idle[0]["cost"]["minor"], 9950);
    assert_eq!(idle[0]["last_used"], serde_json::Value::Null);
    let snapshot = tally_json(
        &server,
        &server.token,
        &["tasks", "run", "snapshot_compliance"],
    );
    assert_eq!(snapshot[0]["last_rows"], 2, "one row per application");

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
    let out = import(dir.path(), &bad, &[]);
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
    let out = import(dir.path(), &bad[..], &["--check"]);
    assert!(!out.status.success(), "--check reports the same problems");
    let unknown = import(dir.path(), &[write(dir.path(), "stuff.csv", "a\n1\n")], &[]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("name the file after what it holds"));
    let table = tally(
        &server,
        &server.token,
        &["compliance", "--as-of", "2026-03-20"],
    );
    assert!(String::from_utf8_lossy(&table.stdout).contains("Office"));
    assert!(server.stop().success());
}
