//! Two `tally server` replicas on one PostgreSQL database (issue 19, item 9): both schedulers
//! find every maintenance task due as they start, and each task runs once, on one of them.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{banner_token, free_port, PgDb};

/// Starts a replica on `db`, logging to `log`.
fn replica(dir: &Path, db: &PgDb, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["server", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(dir)
        .args(["--database-url", &db.url])
        .env("TALLY_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Waits for a replica's banner (it serves, its scheduler has started).
fn started(child: &mut Child) {
    let lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    banner_token(lines);
}

/// How many times each task finished in `log`.
fn runs_in(log: &Path, task: &str) -> usize {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .filter(|l| l.contains("maintenance task") && l.contains(&format!("\"{task}\"")))
        .count()
}

#[test]
fn each_scheduled_task_runs_once_across_two_replicas() {
    let Some(db) = PgDb::create_blocking() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Both at once on the new database: migrations under their lock, then two schedulers
    // finding every task due.
    let logs = [dir.path().join("a.log"), dir.path().join("b.log")];
    let mut a = replica(&dir.path().join("a"), &db, &logs[0]);
    let mut b = replica(&dir.path().join("b"), &db, &logs[1]);
    started(&mut a);
    started(&mut b);
    // The schedulers' first check is at start; give every due task time to finish.
    std::thread::sleep(Duration::from_secs(8));
    common::stop(a);
    common::stop(b);
    for task in [
        "summarize_file_usage",
        "summarize_monthly_usage",
        "delete_aged_usage",
    ] {
        let runs: Vec<usize> = logs.iter().map(|l| runs_in(l, task)).collect();
        assert_eq!(
            runs.iter().sum::<usize>(),
            1,
            "{task}: runs per replica {runs:?}"
        );
    }
}
