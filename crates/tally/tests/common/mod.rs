//! Running the real `tally` binary.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

pub struct Running {
    pub child: Child,
    pub url: String,
    pub token: String,
}

impl Running {
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Starts `tally up` in `dir` and reads the URL and token from its banner.
pub fn up(dir: &std::path::Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["up", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("TALLY_DATABASE_URL")
        .env_remove("TALLY_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut token) = (None, None);
    while url.is_none() || token.is_none() {
        let line = lines.next().expect("banner ended early").unwrap();
        if let Some(u) = line.strip_prefix("Tally is running at ") {
            url = Some(u.to_string());
        }
        if let Some(t) = line.strip_prefix("Admin token (shown once, keep it): ") {
            token = Some(t.to_string());
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        url: url.unwrap(),
        token: token.unwrap(),
    }
}

/// Runs `tally ARGS` against a running server and returns its output.
pub fn tally(server: &Running, token: &str, args: &[&str]) -> Output {
    tally_at(&server.url, token, args)
}

/// Runs `tally ARGS` against the server at `url`.
pub fn tally_at(url: &str, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .env("TALLY_URL", url)
        .env("TALLY_TOKEN", token)
        .output()
        .unwrap()
}

/// Runs `tally ARGS --format json`, insists it succeeded, and parses stdout.
pub fn tally_json(server: &Running, token: &str, args: &[&str]) -> serde_json::Value {
    tally_json_at(&server.url, token, args)
}

/// [`tally_json`] against the server at `url`.
pub fn tally_json_at(url: &str, token: &str, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let out = tally_at(url, token, &all);
    assert!(
        out.status.success(),
        "tally {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
