//! The agent survives what real machines do to it: `kill -9` mid-run, and a server that is away
//! long enough to fill the spool.

mod common;

use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use common::{
    assert_continuous, by_instance, ended, server, stop, tally_json_at, time, wait_for, Site,
};

#[test]
fn after_kill_9_running_programs_continue_and_ended_ones_close_at_the_last_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path(), "Survivor");
    let state = dir.path().join("agent");
    let mut agent = site.agent(&state, &[]);
    wait_for(&state.join("agent.json"));
    std::thread::sleep(Duration::from_secs(1));
    let mut long = Command::new(&site.program).arg("60").spawn().unwrap();
    let mut short = Command::new(&site.program).arg("10").spawn().unwrap();
    site.records_until("Survivor", |r| by_instance(r).len() == 2);
    assert!(
        short.try_wait().unwrap().is_none(),
        "the short program must still run when the agent is killed"
    );

    agent.kill().unwrap(); // SIGKILL: no chance to save anything
    agent.wait().unwrap();
    let killed_at = Utc::now();
    short.wait().unwrap();
    let short_ended = Utc::now();
    let mut agent = site.agent(&state, &[]);
    std::thread::sleep(Duration::from_secs(3));
    long.kill().unwrap();
    long.wait().unwrap();
    let records = site.records_until("Survivor", |r| {
        let groups = by_instance(r);
        groups.len() == 2 && groups.values().all(|g| ended(g))
    });
    agent.kill().unwrap();
    agent.wait().unwrap();
    // Shown only when the test fails.
    eprintln!(
        "{}",
        std::fs::read_to_string(state.join("agent.log")).unwrap()
    );

    let groups = by_instance(&records);
    assert_eq!(
        groups.len(),
        2,
        "two instances, each under one id: {records:#?}"
    );
    let (mut long_run, mut short_run) = (None, None);
    for group in groups.values() {
        assert_continuous(group);
        let last = group.last().unwrap();
        if last["end_not_captured"] == true {
            short_run = Some(group);
        } else {
            long_run = Some(group);
        }
    }
    let short_run = short_run.expect("the program that ended while the agent was dead");
    let long_run = long_run.expect("the program that outlived the agent's restart");
    // Closed at the last heartbeat (one a second) before the kill, not when the agent noticed;
    // a loaded machine can delay a heartbeat, hence the margin.
    let closed = time(&short_run.last().unwrap()["end_time"]);
    assert!(
        closed <= killed_at && closed >= killed_at - chrono::Duration::seconds(5),
        "closed at {closed}, killed at {killed_at}"
    );
    assert!(closed < short_ended);
    // The long run spans the restart under one id, its end seen by the new agent.
    assert!(time(&long_run[0]["start_time"]) < killed_at);
    assert!(time(&long_run.last().unwrap()["end_time"]) > killed_at);
}

#[test]
fn a_full_spool_merges_then_drops_the_oldest_and_tells_the_server_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let mut site = Site::new(dir.path(), "Squeezed");
    let state = dir.path().join("agent");
    let mut agent = site.agent(&state, &["--spool-max-records", "2"]);
    wait_for(&state.join("agent.json"));
    std::thread::sleep(Duration::from_secs(1));
    let port = site.url.rsplit(':').next().unwrap().parse().unwrap();
    stop(site.server.take().unwrap());

    // Four runs while the server is away; each spans more than one 1 s cycle.
    for _ in 0..4 {
        assert!(Command::new(&site.program)
            .arg("1.5")
            .status()
            .unwrap()
            .success());
    }
    // The last run's end is spooled at the agent's next one-second cycle; the server comes
    // back only after that (with room for a loaded machine's late cycle), so the upload finds
    // every run whole rather than the last one still running.
    std::thread::sleep(Duration::from_millis(2500));
    let (back, _) = server(&dir.path().join("server"), port);
    site.server = Some(back);

    let records = site.records_until("Squeezed", |r| r.len() >= 2);
    std::thread::sleep(Duration::from_secs(2));
    let agents = tally_json_at(&site.url, &site.token, &["agents"]);
    eprintln!(
        "{}",
        std::fs::read_to_string(state.join("agent.log")).unwrap()
    );
    agent.kill().unwrap();
    agent.wait().unwrap();

    // Each run's cycles were merged into one record; the two oldest runs were dropped.
    assert_eq!(records.len(), 2, "{records:#?}");
    for r in &records {
        assert_eq!(
            (&r["started"], &r["still_running"]),
            (&true.into(), &false.into())
        );
        let secs = (time(&r["end_time"]) - time(&r["start_time"])).num_milliseconds();
        assert!((1400..=2200).contains(&secs), "merged run of {secs} ms");
    }
    assert_eq!(agents[0]["dropped_records"], 2, "{agents:#?}");
}
