//! The admin CLI verbs against a real `tally up`, on SQLite and on PostgreSQL: the newcomer's
//! path from a rule to a run.

mod common;

use common::json::{entry, strings};
use common::{
    assert_ok, poll_until, run_task, server_on, tally, tally_at, tally_json, up_on, wait_for,
    Backend,
};
use serde_json::json;

each_backend!(
    a_rule_made_with_the_cli_shows_its_run_in_tally_usage,
    tokens_and_errors_through_the_cli,
    tally_tasks_lists_runs_and_changes_maintenance_tasks,
    tally_report_lists_the_catalogue_and_saves_reports,
    tally_users_forget_erases_one_person_and_keeps_the_usage,
);

/// Enrols an agent over the API and uploads one finished run of `code` by alice.
/// `tally openapi | head` and `tally report list | head`: the reader goes away before the
/// verb has printed; it ends quietly (SIGPIPE's default, as Unix tools do), not with a panic.
#[test]
fn printing_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    for args in [&["openapi"][..], &["report", "list"][..]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.is_empty(), "tally {args:?}: {err}");
        assert_eq!(out.status.signal(), Some(13), "tally {args:?}: SIGPIPE");
    }
}

fn upload_a_run(url: &str, admin: &str) {
    let http = reqwest::blocking::Client::new();
    let creds = common::enrol_agent(url, admin, "laptop-1");
    let record = |start: &str, end: &str, started: bool, running: bool| {
        common::code_record("run-1", "alice", (start, end), (started, running))
    };
    let batch = json!({"batch_id": "b1", "records": [
        record("2026-06-01T08:00:00Z", "2026-06-01T08:15:00Z", true, true),
        record("2026-06-01T08:15:00Z", "2026-06-01T08:20:00Z", false, false),
    ]});
    let status = http
        .post(format!("{url}/api/v1/agent/usage"))
        .bearer_auth(creds)
        .json(&batch)
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

fn a_rule_made_with_the_cli_shows_its_run_in_tally_usage(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = up_on(dir.path(), &backend);
    let t = server.token.clone();
    let added = tally_json(
        &server,
        &t,
        &[
            "rules",
            "add",
            "--name",
            "Editor",
            "--file-name",
            "code",
            "--file-version",
            "1.*",
            "--product-name",
            "Visual Studio Code",
            "--apply-to-child-sites",
        ],
    );
    assert_eq!(added[0]["name"], "Editor");
    assert_eq!(added[0]["apply_to_child_sites"], true);
    // A second rule of that name, in any case, is refused with the rule that has it.
    let again = ["rules", "add", "--name", "EDITOR", "--file-name", "other"];
    let out = tally(&server, &t, &again);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("409") && err.contains("already has the name") && err.contains("\"Editor\""),
        "{err}"
    );
    assert_eq!(
        tally_json(&server, &t, &["rules", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    upload_a_run(&server.url, &t);
    // The monthly summary by name: the rule, the computer and the user, the usage in minutes
    // (not RULE_ID, DEVICE_ID, USER_ID and USAGE_MS).
    run_task(&server, "summarize_monthly_usage");
    let monthly = tally(
        &server,
        &t,
        &["summaries", "monthly", "--from", "2026-01-01"],
    );
    let text = String::from_utf8_lossy(&monthly.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("RULE") && header.contains("HOST_NAME") && header.contains("ACCOUNT"),
        "{text}"
    );
    assert!(
        !header.contains("_ID") && !header.contains("USAGE_MS"),
        "{text}"
    );
    let row = lines.next().unwrap_or_default();
    for cell in ["Editor", "laptop-1", "alice", "20 min"] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    let json = tally_json(
        &server,
        &t,
        &["summaries", "monthly", "--from", "2026-01-01"],
    );
    assert_eq!(
        (&json[0]["rule"], &json[0]["host_name"], &json[0]["account"]),
        (
            &serde_json::json!("Editor"),
            &serde_json::json!("laptop-1"),
            &serde_json::json!("alice")
        )
    );
    assert!(json[0]["rule_id"].is_i64(), "JSON keeps the ids: {json}");

    let runs = tally_json(
        &server,
        &t,
        &[
            "usage",
            "--runs",
            "--rule",
            "Editor",
            "--since",
            "2026-06-01",
        ],
    );
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["usage_seconds"], 20 * 60);
    let table = tally(&server, &t, &["usage", "--runs"]);
    let text = String::from_utf8(table.stdout).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("PROGRAM"), "{text}");
    let row = lines.next().unwrap();
    assert!(
        row.contains("code 1.95.0") && row.contains("alice") && row.contains("laptop-1"),
        "{row}"
    );

    let records = tally_json(&server, &t, &["usage"]);
    assert_eq!(records.as_array().unwrap().len(), 2);
    let csv =
        String::from_utf8(tally(&server, &t, &["devices", "--format", "csv"]).stdout).unwrap();
    assert!(csv.lines().next().unwrap().contains("host_name"), "{csv}");
    assert!(csv.contains("laptop-1"));
    let users = tally_json(&server, &t, &["users"]);
    assert_eq!(users[0]["account"], "alice");

    let disabled = tally_json(&server, &t, &["rules", "disable", "editor"]);
    assert_eq!(disabled[0]["enabled"], false);
    let edited = tally_json(
        &server,
        &t,
        &[
            "rules",
            "edit",
            "Editor",
            "--file-version",
            "2.*",
            "--no-apply-to-child-sites",
        ],
    );
    assert_eq!(
        (
            edited[0]["file_version"].as_str(),
            edited[0]["apply_to_child_sites"].as_bool()
        ),
        (Some("2.*"), Some(false))
    );
    assert_eq!(
        tally_json(&server, &t, &["rules", "enable", "Editor"])[0]["enabled"],
        true
    );
    tally_json(&server, &t, &["rules", "delete", "Editor"]);
    assert!(tally_json(&server, &t, &["rules", "list"])
        .as_array()
        .unwrap()
        .is_empty());
    assert!(server.stop().success());
}

fn tokens_and_errors_through_the_cli(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    // Not `tally up`: its local agent would report this machine's inventory at any moment,
    // and automatic rules are expected to find none.
    let server = server_on(dir.path(), &backend);
    let created = tally_json(
        &server,
        &server.token,
        &["tokens", "create", "--name", "audit", "--role", "auditor"],
    );
    let auditor = created[0]["token"].as_str().unwrap().to_string();
    let out = tally(
        &server,
        &auditor,
        &["rules", "add", "--name", "X", "--file-name", "x"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("403") && err.contains("read-only"), "{err}");
    let out = tally(&server, &server.token, &["rules", "add", "--name", "Bad"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("file name"));
    let enrol = tally_json(
        &server,
        &server.token,
        &["enrollment", "create", "--name", "lab", "--max-uses", "5"],
    );
    assert_eq!(enrol[0]["max_uses"], 5);
    assert!(enrol[0]["token"].as_str().unwrap().starts_with("tally_"));
    let auto = tally_json(&server, &server.token, &["rules", "auto", "--percent", "5"]);
    assert!(
        auto.as_array().unwrap().is_empty(),
        "no inventory yet, so no automatic rules"
    );
    let listed = tally_json(&server, &auditor, &["tokens", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    // The table has no TOKEN column (a list has no secret to show) and times to the second.
    let table = tally(&server, &auditor, &["tokens", "list"]);
    let text = String::from_utf8_lossy(&table.stdout);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "NAME", "ROLE", "CREATED", "REVOKED"],
        "{text}"
    );
    let created_at = text.lines().nth(1).unwrap();
    assert!(
        created_at.contains(" UTC") && !created_at.contains('.'),
        "{created_at}"
    );
    let out = tally(&server, "tally_nope", &["devices"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    server.stop();
    let out = tally_at("http://127.0.0.1:9", "x", &["devices"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach Tally"));
}

fn tally_tasks_lists_runs_and_changes_maintenance_tasks(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = up_on(dir.path(), &backend);
    let tasks = tally_json(&server, &server.token, &["tasks"]);
    let names = strings(&tasks, "name");
    assert_eq!(
        names,
        [
            "summarize_file_usage",
            "summarize_monthly_usage",
            "record_usage_sessions",
            "delete_aged_usage",
            "delete_aged_summaries",
            "generate_auto_rules",
            "write_reports",
            "snapshot_compliance",
            "system_metering"
        ]
    );
    let ran = run_task(&server, "summarize_monthly_usage");
    assert_eq!(ran[0]["pending_records"], 0);
    assert!(ran[0]["last_run_at"].is_string());
    let set = tally_json(
        &server,
        &server.token,
        &[
            "tasks",
            "set",
            "delete_aged_usage",
            "--age-days",
            "30",
            "--every-hours",
            "12",
        ],
    );
    assert_eq!(
        (set[0]["age_days"].as_i64(), set[0]["every_secs"].as_i64()),
        (Some(30), Some(43200))
    );
    // The table reads back in the unit --every-hours takes, times to the second.
    let table = tally(&server, &server.token, &["tasks"]);
    let text = String::from_utf8_lossy(&table.stdout);
    let header = text.lines().next().unwrap();
    assert!(
        header.contains("EVERY") && !header.contains("EVERY_SECS"),
        "{text}"
    );
    let aged = text
        .lines()
        .find(|l| l.starts_with("delete_aged_usage"))
        .unwrap();
    assert!(aged.contains(" 12 h 00 min "), "{aged}");
    let monthly = text
        .lines()
        .find(|l| l.starts_with("summarize_monthly_usage"))
        .unwrap();
    assert!(
        monthly.contains(" UTC") && !monthly.contains('.'),
        "{monthly}"
    );
    let refused = tally(
        &server,
        &server.token,
        &["tasks", "set", "delete_aged_usage", "--age-days", "1"],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("between 2 and 255"));
    let hours = tally_json(&server, &server.token, &["summaries", "file-usage"]);
    assert!(hours.as_array().unwrap().is_empty());

    // Real data: `tally up`'s own agent reports this machine's packages. On one computer every
    // program is on 100 % of them; the automatic rules made from that are real programs only
    // (old code made `[ (coreutils)`, `GET (libwww-perl)`, `FileCheck-14 (…)` and the like).
    // The daily `generate_auto_rules` may have run first (a task never run runs at once);
    // either way, once the inventory is in, the automatic rules are there.
    let automatic = || {
        tally(
            &server,
            &server.token,
            &["rules", "auto", "--percent", "100"],
        );
        let all = tally_json(&server, &server.token, &["rules", "list"]);
        let rules = all.as_array().unwrap().iter();
        let automatic = rules.filter(|r| r["origin"] == "automatic");
        automatic.cloned().collect::<Vec<serde_json::Value>>()
    };
    let rules = poll_until(automatic, |rules| !rules.is_empty());
    assert!(
        !rules.is_empty(),
        "this machine's packages hold some programs"
    );
    assert!(rules.len() <= 100, "bounded");
    for rule in &rules {
        let (file, package) = (
            rule["file_name"].as_str().unwrap(),
            rule["product_name"].as_str().unwrap(),
        );
        assert_eq!(rule["enabled"], false, "{rule}");
        assert!(
            file.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
                && file.chars().any(|c| c.is_ascii_lowercase()),
            "not a program name: {rule}"
        );
        let versioned = file
            .rsplit_once('-')
            .is_some_and(|(_, v)| v.chars().all(|c| c.is_ascii_digit() || c == '.'));
        assert!(!versioned, "a versioned alias: {rule}");
        let library = package.starts_with("lib") && !package.starts_with("libreoffice");
        assert!(
            !["coreutils", "util-linux", "bash", "dash"].contains(&package) && !library,
            "a base-system or library tool: {rule}"
        );
    }
    assert!(server.stop().success());
}

fn tally_report_lists_the_catalogue_and_saves_reports(backend: Backend) {
    // The catalogue needs no server.
    let out = tally_at(
        "http://127.0.0.1:9",
        "x",
        &["report", "list", "--format", "json"],
    );
    assert!(out.status.success());
    let catalogue: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reclaim = entry(&catalogue, "name", "reclaim");
    // The same parameters as tally reclaim: the same list.
    assert_eq!(reclaim["params"][1]["name"], "days");
    assert_eq!(reclaim["params"][1]["default"], "90");
    assert_eq!(reclaim["params"][2]["name"], "as-of");

    let dir = tempfile::tempdir().unwrap();
    let server = up_on(dir.path(), &backend);
    let pdf = dir.path().join("tasks.pdf");
    let out = tally(
        &server,
        &server.token,
        &["report", "tasks", "--out", pdf.to_str().unwrap()],
    );
    assert_ok(&out);
    if common::needs_poppler("the report PDF read-backs") {
        let text = std::process::Command::new("pdftotext")
            .arg(&pdf)
            .arg("-")
            .output()
            .expect("pdftotext (poppler-utils)");
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("Tally site S01"),
            "the site heads the page: {text}"
        );
        assert!(text.contains("summarize_file_usage"));
    }
    let out = tally(
        &server,
        &server.token,
        &[
            "report",
            "monthly-usage",
            "--param",
            "from=2026-1-x",
            "--out",
            "-",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("write YYYY-MM"));
    let csv = tally(
        &server,
        &server.token,
        &["report", "reclaim", "--format", "csv", "--out", "-"],
    );
    assert!(csv.status.success());
    assert!(String::from_utf8_lossy(&csv.stdout).starts_with("program,computer,package"));
    // A file named .docx would not hold what its name says: refused, nothing written.
    let docx = dir.path().join("tasks.docx");
    let out = tally(
        &server,
        &server.token,
        &["report", "tasks", "--out", docx.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(".docx is not a report format"),
        "{err}"
    );
    assert!(!docx.exists());
    let out = tally(
        &server,
        &server.token,
        &[
            "report",
            "tasks",
            "--format",
            "csv",
            "--out",
            pdf.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "--format csv into a .pdf file");
    let html = dir.path().join("tasks.HTML");
    let out = tally(
        &server,
        &server.token,
        &["report", "tasks", "--out", html.to_str().unwrap()],
    );
    assert!(out.status.success(), "the format comes from the extension");
    assert!(std::fs::read_to_string(&html).unwrap().contains("<html"));

    // The scheduler writes today's reports into the data directory on its first round.
    let today = dir
        .path()
        .join("tally-data/reports")
        .join(chrono::Utc::now().date_naive().to_string());
    wait_for(&today.join("monthly-usage.pdf"));
    assert!(server.stop().success());
}

fn tally_users_forget_erases_one_person_and_keeps_the_usage(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    tally_json(
        &server,
        &server.token,
        &["rules", "add", "--name", "Code", "--file-name", "code"],
    );
    upload_a_run(&server.url, &server.token);
    let forgotten = tally_json(&server, &server.token, &["users", "forget", "alice"]);
    let id = forgotten[0]["user_id"].as_i64().expect("alice was a user");
    let users = tally_json(&server, &server.token, &["users"]);
    assert_eq!(strings(&users, "account"), [format!("forgotten-{id}")]);
    let usage = tally_json(&server, &server.token, &["usage", "--rule", "Code"]);
    assert_eq!(
        usage.as_array().unwrap().len(),
        2,
        "the usage stays: {usage}"
    );
    let out = tally(&server, &server.token, &["users", "forget", "alice"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("404") && err.contains("alice"), "{err}");
    let out = tally(&server, &server.token, &["users", "resolve", "pseu-00"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not pseudonymise"), "{err}");
}
