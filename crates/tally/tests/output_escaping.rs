//! Stored text is untrusted (agents and imports write it): the CLI shows control characters
//! escaped in every table and CSV, CSV cells never start a spreadsheet formula, and JSON keeps
//! every value exact. Run against a real `tally server` on SQLite and on PostgreSQL.

mod common;

use std::path::Path;

use common::{assert_ok, server_on, tally, tally_json, Backend, Running};
use serde_json::{json, Value};

each_backend!(
    tables_and_csv_show_control_characters_escaped,
    csv_export_neutralises_formulas_and_json_export_keeps_them,
);

/// Clears the screen and turns the text red, as issue 15's probe did.
const VERSION: &str = "\u{1b}[2J\u{1b}[31mPWN\u{1b}[0m";
/// An 8-bit CSI (U+009B), a bell and a right-to-left override.
const ACCOUNT: &str = "root\u{9b}2J\u{7}\u{202e}txt.exe";
/// A spreadsheet formula that would fetch a URL.
const HOST: &str = r#"=HYPERLINK("http://evil.example/h","host")"#;

/// Enrols an agent for `host` over the API, reports `version` in a heartbeat and uploads one
/// run of `code` by `account`.
fn agent_reports(server: &Running, host: &str, version: &str, account: &str) {
    let http = reqwest::blocking::Client::new();
    let post = |path: &str, auth: &str, body: Value| {
        let mut req = http.post(format!("{}{path}", server.url)).json(&body);
        if !auth.is_empty() {
            req = req.bearer_auth(auth);
        }
        let resp = req.send().unwrap();
        let status = resp.status();
        let body: Value = resp.json().unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    };
    let token = post(
        "/api/v1/enrollment-tokens",
        &server.token,
        json!({"name": "probe"}),
    );
    let enrolled = post(
        "/api/v1/agent/enroll",
        "",
        json!({"enrollment_token": token["token"], "host_name": host}),
    );
    let creds = format!(
        "{}.{}",
        enrolled["agent_id"].as_str().unwrap(),
        enrolled["agent_secret"].as_str().unwrap()
    );
    let beat = json!({"agent_version": version, "sent_at": "2026-06-01T08:00:00Z"});
    post("/api/v1/agent/heartbeat", &creds, beat);
    let period = ("2026-06-01T08:00:00Z", "2026-06-01T08:20:00Z");
    let record = common::code_record("run-1", account, period, (true, false));
    let batch = json!({"batch_id": "b1", "records": [record]});
    post("/api/v1/agent/usage", &creds, batch);
}

/// Stdout of `tally ARGS`, insisting it succeeded.
fn stdout(server: &Running, args: &[&str]) -> String {
    let out = tally(server, &server.token, args);
    assert!(
        out.status.success(),
        "tally {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// No byte or character of `text` is one a terminal acts on.
fn assert_inert(args: &[&str], text: &str) {
    let raw = text
        .chars()
        .find(|&c| c != '\n' && tally_core::escape::is_control(c));
    assert_eq!(
        raw, None,
        "tally {args:?} printed a control character:\n{text}"
    );
}

/// Rewrites stored rows with `sql` (`$1` the new value, `$2` the old), as a database filled
/// before the server refused control characters in names holds them.
fn stored_before_the_checks(dir: &Path, backend: &Backend, changes: &[(&str, &str, &str)]) {
    use sqlx::Connection;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        macro_rules! apply {
            ($conn:expr) => {{
                let mut conn = $conn;
                for (sql, new, old) in changes {
                    let done = sqlx::query(sql)
                        .bind(*new)
                        .bind(*old)
                        .execute(&mut conn)
                        .await
                        .unwrap();
                    assert_eq!(done.rows_affected(), 1, "{sql}");
                }
            }};
        }
        match backend {
            Backend::Sqlite => {
                let file = dir.join("tally-data").join("tally.db");
                let url = format!("sqlite://{}", file.display());
                apply!(sqlx::SqliteConnection::connect(&url).await.unwrap())
            }
            Backend::Postgres(db) => apply!(sqlx::PgConnection::connect(&db.url).await.unwrap()),
        }
    });
}

fn tables_and_csv_show_control_characters_escaped(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    let rule = "Code\u{1b}[8m";
    let host = "laptop\u{1b}]0;owned\u{7}";
    // The API refuses control characters in names now (input_limits.rs); rows stored before it
    // did, or by an older version, still hold them, and those are what the CLI must not print.
    let added = tally_json(
        &server,
        &server.token,
        &["rules", "add", "--name", "Code", "--file-name", "code"],
    );
    assert_eq!(added[0]["name"], "Code");
    agent_reports(&server, "laptop", "1.0", "root");
    stored_before_the_checks(
        dir.path(),
        &backend,
        &[
            (
                "UPDATE metering_rules SET name = $1 WHERE name = $2",
                rule,
                "Code",
            ),
            (
                "UPDATE devices SET host_name = $1 WHERE host_name = $2",
                host,
                "laptop",
            ),
            (
                "UPDATE agents SET agent_version = $1 WHERE agent_version = $2",
                VERSION,
                "1.0",
            ),
            (
                "UPDATE users SET account = $1 WHERE account = $2",
                ACCOUNT,
                "root",
            ),
        ],
    );

    let shown = [
        (&["agents"][..], r"\u{1b}[2J\u{1b}[31mPWN\u{1b}[0m"),
        (&["agents", "--format", "csv"], r"\u{1b}[2J\u{1b}[31mPWN"),
        (&["users"], r"root\u{9b}2J\u{7}\u{202e}txt.exe"),
        (&["users", "--format", "csv"], r"root\u{9b}2J\u{7}\u{202e}"),
        (&["devices"], r"laptop\u{1b}]0;owned\u{7}"),
        (&["usage"], r"root\u{9b}2J"),
        (&["usage", "--runs"], r"laptop\u{1b}]0;owned"),
        (&["rules", "list"], r"Code\u{1b}[8m"),
        (&["rules", "list", "--format", "csv"], r"Code\u{1b}[8m"),
    ];
    for (args, escaped) in shown {
        let text = stdout(&server, args);
        assert_inert(args, &text);
        assert!(text.contains(escaped), "tally {args:?}:\n{text}");
    }
    // JSON is for programs: the exact values.
    let agents = tally_json(&server, &server.token, &["agents"]);
    assert_eq!(agents[0]["agent_version"], VERSION);
    let users = tally_json(&server, &server.token, &["users"]);
    assert!(users
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["account"] == ACCOUNT));
}

/// `tally export` of `kind` in `format` from the server's database; the file's text.
fn export(dir: &Path, backend: &Backend, kind: &str, format: &str) -> String {
    let out = dir.join(format!("export-{format}"));
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["export", "--format", format, "--kind", kind])
        .arg("--out")
        .arg(&out)
        .arg("--data-dir")
        .arg(dir.join("tally-data"))
        .args(backend.db_args())
        .output()
        .unwrap();
    assert_ok(&run);
    std::fs::read_to_string(out.join(format!("{kind}.{format}"))).unwrap()
}

fn csv_export_neutralises_formulas_and_json_export_keeps_them(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    agent_reports(&server, HOST, "1.0", "-1+cmd|' /C calc'!A0");

    let csv = export(dir.path(), &backend, "devices", "csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let host_column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "host_name");
    let hosts: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[host_column.unwrap()].to_string())
        .collect();
    assert_eq!(hosts, [format!("'{HOST}")], "{csv}");
    let users = export(dir.path(), &backend, "users", "csv");
    assert!(users.contains("'-1+cmd|' /C calc'!A0"), "{users}");

    let json: Value =
        serde_json::from_str(&export(dir.path(), &backend, "devices", "json")).unwrap();
    assert_eq!(json[0]["host_name"], HOST);

    // The CLI's own CSV: formulas neutralised, numbers (ids, counts) left numbers.
    let csv = stdout(&server, &["devices", "--format", "csv"]);
    assert!(
        csv.contains(&format!("\"'{}\"", HOST.replace('"', "\"\""))),
        "{csv}"
    );
    let agents = stdout(&server, &["agents", "--format", "csv"]);
    let row = agents.lines().nth(1).unwrap();
    assert!(
        row.contains(",0,"),
        "dropped_records is the number 0: {row}"
    );
}
