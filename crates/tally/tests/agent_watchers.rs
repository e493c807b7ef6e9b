//! The two process watchers with a real agent, real programs and a real server: netlink sees a
//! 50 ms program exactly; where netlink is unavailable (another network namespace) the agent
//! says so and polls `/proc` instead.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_ok, time, wait_for, Site};

/// The entry called `name` in one of an inventory's lists (accounts, software).
fn entry<'a>(list: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    list.as_array().unwrap().iter().find(|e| e["name"] == name)
}

#[test]
fn the_netlink_watcher_catches_a_50_ms_program() {
    if !common::needs_root("the netlink watcher tests") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path(), "Blink");
    let state = dir.path().join("agent");
    let mut agent = site.agent(&state, &["--watcher", "netlink"]);
    wait_for(&state.join("agent.json"));
    // The policy (with the rule) is read right after enrolment.
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    assert!(Command::new(&site.program)
        .arg("0.05")
        .status()
        .unwrap()
        .success());
    let ran = started.elapsed();
    let records = site.records_until("Blink", |r| !r.is_empty());
    // The inventory went up at start: hardware on the device, packages with their programs,
    // accounts with the service-account classification.
    let devices = common::tally_json_at(&site.url, &site.token, &["devices"]);
    assert!(devices[0]["threads"].as_i64().unwrap() >= 1, "{devices:#?}");
    let inventory = common::tally_json_at(
        &site.url,
        &site.token,
        &["devices", "--inventory", &devices[0]["id"].to_string()],
    );
    let root = entry(&inventory["accounts"], "root").expect("root is a local account");
    assert_eq!(root["service_account"], true);
    if std::path::Path::new("/var/lib/dpkg/status").exists() {
        let coreutils = entry(&inventory["software"], "coreutils").expect("coreutils is installed");
        assert!(coreutils["executables"]
            .as_array()
            .unwrap()
            .contains(&"sleep".into()));
    }
    agent.kill().unwrap();
    agent.wait().unwrap();
    let log = std::fs::read_to_string(state.join("agent.log")).unwrap();
    assert!(log.contains("watcher=\"netlink\""), "{log}");

    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(
        (&r["started"], &r["still_running"], &r["end_not_captured"]),
        (&true.into(), &false.into(), &false.into())
    );
    // The start comes from /proc (10 ms ticks), the end from the kernel's timestamp on the
    // exit event, however late the agent reads it: within the run the test timed, give or
    // take a tick.
    let metered = (time(&r["end_time"]) - time(&r["start_time"])).num_milliseconds();
    assert!(
        (30..=ran.as_millis() as i64 + 20).contains(&metered),
        "a 50 ms program (run took {} ms) metered as {metered} ms",
        ran.as_millis()
    );
}

#[test]
fn without_netlink_the_agent_polls_proc_and_still_meters() {
    let tools = [
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("ip", "iproute2"),
    ];
    if !common::needs::group("the netlink watcher tests", true, &tools) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("up.log");
    // A new network namespace has no process connector; its own loopback carries the API.
    let mut up = Command::new("unshare")
        .args(["--net", "--", "sh", "-c"])
        .arg("ip link set lo up && exec \"$0\" up --listen 127.0.0.1:0")
        .arg(env!("CARGO_BIN_EXE_tally"))
        .current_dir(dir.path())
        .env_remove("TALLY_DATABASE_URL")
        .env_remove("TALLY_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let (mut url, mut token) = (String::new(), String::new());
    while url.is_empty() || token.is_empty() {
        let line = lines.next().expect("banner").unwrap();
        if let Some(u) = line.strip_prefix("Tally is running at ") {
            url = u.to_string();
        }
        if let Some(t) = line.strip_prefix("Admin token (shown once, keep it): ") {
            token = t.to_string();
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let netns = format!("--net=/proc/{}/ns/net", up.id());
    let tally = |args: &[&str]| -> serde_json::Value {
        let out = Command::new("nsenter")
            .arg(&netns)
            .arg(env!("CARGO_BIN_EXE_tally"))
            .args(args)
            .args(["--format", "json"])
            .env("TALLY_URL", &url)
            .env("TALLY_TOKEN", &token)
            .output()
            .unwrap();
        assert_ok(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let name = format!("tally-polled-{}", std::process::id());
    let program = dir.path().join(&name);
    std::fs::copy("/bin/sleep", &program).unwrap();
    tally(&["rules", "add", "--name", "Polled", "--file-name", &name]);
    std::thread::sleep(Duration::from_secs(5));
    assert!(Command::new(&program).arg("2").status().unwrap().success());
    let runs = common::poll_until(
        || tally(&["usage", "--runs", "--rule", "Polled"]),
        common::any_run_ended,
    );
    common::stop(up);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("netlink process connector is unavailable"),
        "{log}"
    );
    assert!(log.contains("watcher=\"proc polling\""), "{log}");
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let seconds = runs[0]["usage_seconds"].as_i64().unwrap();
    assert!(
        (1..=3).contains(&seconds),
        "a 2 s run polled as {seconds} s"
    );
}
