//! The ingest load generator runs end to end on a small load and reports both rates.

use std::process::{Command, Output};

#[path = "../../tally-store/tests/common/needs.rs"]
mod needs;

/// Runs `tally bench ARGS`.
fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap()
}

/// Runs `tally bench ARGS`, insists it succeeded, and returns what it printed.
fn bench_ok(args: &[&str]) -> String {
    let out = bench(args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn bench_ingest_reports_the_ceiling_and_the_http_rate() {
    let text = bench_ok(&[
        "ingest",
        "--agents",
        "2",
        "--records",
        "2000",
        "--batch",
        "500",
    ]);
    assert!(
        text.contains("2 agents × 2 batches × 500 records = 2000 records"),
        "{text}"
    );
    let rate = |label: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(label)).unwrap();
        line.split(':')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(rate("storage ceiling") > 0.0);
    assert!(rate("end to end HTTP") > 0.0);
}

#[test]
fn bench_ingest_refuses_an_impossible_load() {
    let out = bench(&["ingest", "--agents", "4", "--records", "10", "--batch", "5"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--records must be at least"));
}

#[test]
fn bench_agent_reports_capture_cpu_and_memory_for_both_watchers() {
    if !needs::group("the agent benchmark (netlink watcher)", true, &[]) {
        return;
    }
    let text = bench_ok(&["agent", "--rate", "20", "--seconds", "2", "--run-ms", "50"]);
    let row = |watcher: &str| -> Vec<f64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(watcher))
            .unwrap_or_else(|| panic!("no {watcher} row in {text}"));
        line.split_whitespace()
            .skip(1)
            .map(|f| f.trim_end_matches('%').parse().unwrap_or(f64::NAN))
            .collect()
    };
    for watcher in ["netlink", "poll"] {
        let r = row(watcher);
        // started, captured, fraction, CPU %, RSS (MB)
        assert_eq!(r[0], 40.0, "{text}");
        assert!(r[1] <= r[0] && r[2] <= 1.0, "{text}");
        assert!(r[3] >= 0.0 && r[4] > 0.0, "{text}");
    }
    // Netlink is told of every exec; a 50 ms program is read long before it ends.
    assert!(row("netlink")[1] >= 36.0, "{text}");
}

#[test]
fn bench_summarize_reports_each_task_against_a_plain_read() {
    let text = bench_ok(&[
        "summarize",
        "--records",
        "3000",
        "--devices",
        "10",
        "--days",
        "2",
    ]);
    assert!(
        text.contains("baseline read") && text.contains("(3000 records)"),
        "{text}"
    );
    let rows = |task: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(task)).unwrap();
        line.rsplit(", ")
            .next()
            .unwrap()
            .trim_end_matches(" rows")
            .parse()
            .unwrap()
    };
    // Every hour of the 2 days for each of the 40 rules, plus the hour after for runs that
    // start in the last quarter hour.
    assert!((1920..=1960).contains(&rows("file_usage")), "{text}");
    // Device d runs programs d, d+10, d+20 and d+30: 4 rules × 10 devices, all in January.
    assert_eq!(rows("monthly_usage"), 40, "{text}");
}
