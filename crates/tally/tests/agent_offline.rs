//! A real `tally agent` process against a real `tally server` process that goes away and comes
//! back: records made while it was down arrive once it returns, each exactly once.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::tally_json_at as json;
use common::{server, stop, wait_for, Site};

#[test]
fn usage_made_while_the_server_is_down_arrives_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut site = Site::new(dir.path(), "Offline");
    let state = dir.path().join("agent");
    let mut agent = site.agent(&state, &["--watcher", "poll", "--poll-ms", "200"]);
    let creds = state.join("agent.json");
    wait_for(&creds);
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::thread::sleep(Duration::from_secs(1));

    let port = site.url.rsplit(':').next().unwrap().parse().unwrap();
    stop(site.server.take().unwrap());
    let status = Command::new(&site.program).arg("3").status().unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_secs(1));
    let (second, again) = server(&dir.path().join("server"), port);
    assert!(again.is_none(), "the restarted server reuses its data");
    site.server = Some(second);

    let (url, token) = (&site.url, &site.token);
    let runs = common::poll_until(
        || json(url, token, &["usage", "--runs", "--rule", "Offline"]),
        common::any_run_ended,
    );
    let _ = agent.kill();
    let _ = agent.wait();
    let records = json(url, token, &["usage", "--rule", "Offline"]);

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
