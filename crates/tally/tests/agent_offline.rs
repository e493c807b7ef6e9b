//! A real `tally agent` process against a real `tally server` process that goes away and comes
//! back: records made while it was down arrive once it returns, each exactly once.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::tally_json_at as json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `tally server` and returns it with the bootstrap token, if it printed one.
fn server(data: &std::path::Path, port: u16) -> (Child, Option<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut token = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(t) = line.strip_prefix("Admin token (shown once, keep it): ") {
            token = Some(t.to_string());
        }
        if line.starts_with("Stop with") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (child, token)
}

fn stop(mut child: Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

#[test]
fn usage_made_while_the_server_is_down_arrives_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (first, token) = server(&data, port);
    let token = token.expect("a new server prints a bootstrap token");
    let name = format!("tally-offline-{}", std::process::id());
    let program = dir.path().join(&name);
    std::fs::copy("/bin/sleep", &program).unwrap();
    json(
        &url,
        &token,
        &["rules", "add", "--name", "Offline", "--file-name", &name],
    );
    let enrol = json(
        &url,
        &token,
        &["enrollment", "create", "--name", "t", "--max-uses", "1"],
    );
    let mut agent = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "agent",
            "--server",
            &url,
            "--poll-ms",
            "200",
            "--report-secs",
            "1",
            "--policy-secs",
            "1",
        ])
        .args(["--enroll-token", enrol[0]["token"].as_str().unwrap()])
        .arg("--state-dir")
        .arg(dir.path().join("agent"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let creds = dir.path().join("agent/agent.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !creds.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::thread::sleep(Duration::from_secs(1));

    stop(first);
    let status = Command::new(&program).arg("3").status().unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_secs(1));
    let (second, again) = server(&data, port);
    assert!(again.is_none(), "the restarted server reuses its data");

    let deadline = Instant::now() + Duration::from_secs(30);
    let runs = loop {
        let runs = json(&url, &token, &["usage", "--runs", "--rule", "Offline"]);
        let done = runs
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["still_running"] == false);
        if done || Instant::now() > deadline {
            break runs;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = agent.kill();
    let _ = agent.wait();
    let records = json(&url, &token, &["usage", "--rule", "Offline"]);
    stop(second);

    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["still_running"], false);
    assert_eq!(runs[0]["start_known"], true);
    let secs = runs[0]["usage_seconds"].as_i64().unwrap();
    assert!((2..=5).contains(&secs), "a 3 s run metered as {secs} s");
    // One-second cycles: several records, joined end to start, none twice.
    let mut periods: Vec<(String, String)> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["start_time"].as_str().unwrap().into(),
                r["end_time"].as_str().unwrap().into(),
            )
        })
        .collect();
    periods.sort();
    assert!(periods.len() >= 2, "{periods:?}");
    for pair in periods.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "periods join exactly: {periods:?}");
    }
    assert_eq!(runs[0]["records"].as_u64().unwrap() as usize, periods.len());
}
