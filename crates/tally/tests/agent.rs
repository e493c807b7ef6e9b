//! The newcomer's path, with real processes: `tally up` meters this machine; a rule made with
//! the CLI matches a real program run; `tally usage --runs` shows that run.

mod common;

use std::time::{Duration, Instant};

use common::{tally_json, up};

#[test]
fn a_program_run_under_tally_up_shows_in_tally_usage() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let name = format!("tally-test-editor-{}", std::process::id());
    let program = dir.path().join(&name);
    std::fs::copy("/bin/sleep", &program).unwrap();
    tally_json(
        &server,
        &server.token,
        &["rules", "add", "--name", "TestEditor", "--file-name", &name],
    );
    // The local agent re-reads its policy every 3 s.
    std::thread::sleep(Duration::from_secs(5));
    let started = Instant::now();
    let status = std::process::Command::new(&program)
        .arg("2")
        .status()
        .unwrap();
    assert!(status.success());
    let ran = started.elapsed().as_secs_f64();

    let deadline = Instant::now() + Duration::from_secs(20);
    let runs = loop {
        let runs = tally_json(
            &server,
            &server.token,
            &["usage", "--runs", "--rule", "TestEditor"],
        );
        if !runs.as_array().unwrap().is_empty() || Instant::now() > deadline {
            break runs;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run["still_running"], false);
    assert_eq!(
        run["start_known"], true,
        "the start comes from /proc, exactly"
    );
    // Polling every 500 ms sees the end within one interval of it.
    let seconds = run["usage_seconds"].as_i64().unwrap() as f64;
    assert!(
        (seconds - ran).abs() <= 1.5,
        "usage {seconds}s for a run of {ran:.2}s"
    );
    let records = tally_json(&server, &server.token, &["usage", "--rule", "TestEditor"]);
    assert_eq!(records[0]["started"], true);
    let users = tally_json(&server, &server.token, &["users"]);
    assert!(!users.as_array().unwrap().is_empty());
    assert!(server.stop().success());
}
