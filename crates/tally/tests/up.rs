//! `tally up` as a newcomer runs it: a real process, a real data directory, real HTTP.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::up;

fn get(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(serde_json::Value::Null))
}

#[test]
fn up_serves_health_and_a_working_admin_token_and_reuses_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let first = up(dir.path());
    assert!(
        dir.path().join("tally-data/tally.db").exists(),
        "data directory created"
    );
    let (status, health) = get(&format!("{}/healthz", first.url), None);
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], "sqlite");
    let (status, me) = get(&format!("{}/api/v1/whoami", first.url), Some(&first.token));
    assert_eq!(status, 200);
    assert_eq!(me["role"], "admin");
    let (status, _) = get(&format!("{}/api/v1/whoami", first.url), Some("tally_wrong"));
    assert_eq!(status, 401);
    let old_token = first.token.clone();
    assert!(first.stop().success(), "SIGTERM stops tally cleanly");

    let second = up(dir.path());
    assert_ne!(second.token, old_token, "each start prints a fresh token");
    let (status, _) = get(&format!("{}/api/v1/whoami", second.url), Some(&old_token));
    assert_eq!(
        status, 200,
        "the first run's token is still in the reused database"
    );
    let (_, sites) = get(&format!("{}/api/v1/sites", second.url), Some(&second.token));
    assert_eq!(sites.as_array().unwrap().len(), 1);
    assert!(second.stop().success());
}

#[test]
fn a_bad_setting_is_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "server",
            "--site-code",
            "TOOLONG",
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("site_code") && err.contains("three letters"),
        "{err}"
    );
}

#[test]
fn the_config_file_is_read_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tally.toml"),
        "site_code = \"CFG\"\nsite_name = \"From file\"\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "server",
            "--config",
            "tally.toml",
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .env_remove("TALLY_SITE_CODE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.starts_with("Tally is running at http://127.0.0.1:"),
        "{first}"
    );
    assert!(
        !first.ends_with(":1"),
        "the --listen flag beats the file: {first}"
    );
    assert!(second.contains("site CFG"), "{second}");
}
