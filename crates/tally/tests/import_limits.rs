//! `tally import` refuses what the API refuses (issue 15, F2, F6, F7): times outside the
//! plausible window, quantities past the limit, over-long names, duplicate JSON keys; and a
//! value it cannot read is named by its field. Each refusal is `FILE:LINE: field: reason` and
//! loads nothing. The checks are the same on both backends (they run before the database is
//! written), so SQLite is enough here.

mod common;

use std::path::Path;
use std::process::Output;

use common::write;

/// Runs `tally import FILES` on a fresh SQLite database in `dir`.
fn import(dir: &Path, files: &[String]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["import", "--create"])
        .args(files)
        .args(["--data-dir", dir.join("tally-data").to_str().unwrap()])
        .env_remove("TALLY_DATABASE_URL")
        .output()
        .unwrap()
}

/// Asserts the import failed, saying `expected`, and loaded nothing.
fn refused(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "loaded: {stderr}");
    assert!(stderr.contains(expected), "{expected:?} not in: {stderr}");
    assert!(stderr.contains("nothing was loaded"), "{stderr}");
}

/// An estate the rows below may refer to: pc1, ann and the Chat application.
fn estate(dir: &Path) -> Vec<String> {
    vec![
        write(dir, "devices.csv", "host_name\npc1\n"),
        write(dir, "users.csv", "account\nann\n"),
        write(
            dir,
            "applications.csv",
            "name,metric\nChat,concurrent_users\n",
        ),
    ]
}

#[test]
fn a_session_from_year_1_to_9999_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = estate(dir.path());
    files.push(write(
        dir.path(),
        "usage_sessions.csv",
        "application,host_name,account,start,end\n\
         Chat,pc1,ann,0001-01-01T00:00:00Z,9999-12-31T23:59:59Z\n\
         Chat,pc1,ann,2026-03-02T09:00:00Z,2026-03-02T10:00:00Z\n",
    ));
    let out = import(dir.path(), &files);
    refused(
        &out,
        "usage_sessions.csv:2: start: 0001-01-01T00:00:00Z is outside the plausible window 2000-01-01T00:00:00Z to",
    );
    refused(
        &out,
        "usage_sessions.csv:2: end: 9999-12-31T23:59:59Z is outside",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 problems found"), "{stderr}");
}

#[test]
fn a_license_quantity_past_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = estate(dir.path());
    files.push(write(
        dir.path(),
        "licenses.csv",
        "application,metric,quantity,assignment_type\n\
         Chat,concurrent_users,9223372036854775807,organization\n\
         Chat,concurrent_users,1000000000,organization\n",
    ));
    refused(
        &import(dir.path(), &files),
        "licenses.csv:2: quantity: 9223372036854775807 is out of range; allowed: 0 to 1000000000",
    );
}

#[test]
fn over_long_and_unprintable_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let long = "h".repeat(10_000);
    let devices = write(
        dir.path(),
        "devices.csv",
        &format!("host_name,cores\n{long},4\npc2,-5\npc3,4\n"),
    );
    let out = import(dir.path(), &[devices]);
    refused(&out, "devices.csv:2: host_name: at most 255 characters");
    refused(&out, "devices.csv:3: cores: must not be negative");
    let users = write(
        dir.path(),
        "users.json",
        "[{\"account\": \"ann\\u0000\"}, {\"account\": \"bob\", \"full_name\": \"\\u001b[2JBob\"}]",
    );
    let out = import(dir.path(), &[users]);
    refused(
        &out,
        "users.json:1: account: must not contain control characters",
    );
    refused(
        &out,
        "users.json:2: full_name: must not contain control characters",
    );
}

#[test]
fn a_json_key_given_twice_is_refused_as_the_api_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let devices = write(
        dir.path(),
        "devices.json",
        r#"[{"host_name": "pc1"}, {"host_name": "pc2", "host_name": "pc9"}]"#,
    );
    refused(
        &import(dir.path(), &[devices]),
        "devices.json:2: host_name: appears twice in this object",
    );
}

#[test]
fn a_bad_date_is_named_by_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = estate(dir.path());
    files.push(write(
        dir.path(),
        "usage_sessions.json",
        r#"[{"application": "Chat", "host_name": "pc1", "account": "ann",
             "start": "2026-03-02T09:00:00Z", "end": "yesterday"}]"#,
    ));
    files.push(write(
        dir.path(),
        "installations.csv",
        "host_name,software,installed_on\npc1,chat,2026-02-30\n",
    ));
    let out = import(dir.path(), &files);
    refused(&out, "usage_sessions.json:1: end: ");
    refused(&out, "installations.csv:2: installed_on: ");
}
