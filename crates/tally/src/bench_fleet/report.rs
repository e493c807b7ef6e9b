//! The figures of a `tally bench fleet` run: per request kind and in total, as a table or
//! JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{FleetArgs, Offered, Tally, KINDS};

/// A finished run, before its figures are worked out.
pub(super) struct Run<'a> {
    pub(super) backend: &'static str,
    pub(super) ingest: tally_service::group_commit::IngestMode,
    pub(super) args: &'a FleetArgs,
    pub(super) intervals: [f64; 4],
    pub(super) seeding: Duration,
    pub(super) offered: Offered,
    /// Usage records in the database after the run, counted by the store.
    pub(super) counted: i64,
}

#[derive(Debug, Serialize)]
pub(super) struct Report {
    backend: &'static str,
    /// Group-commit writers on the server; 0: each request its own transaction.
    ingest_writers: usize,
    agents: u64,
    cycle_secs: u64,
    window_secs: f64,
    in_flight: u64,
    /// The machine's cores, shared by the server and the load generator (one process).
    cores: usize,
    seed_secs: f64,
    kinds: Vec<KindReport>,
    total: KindReport,
    records: Records,
    /// Requests due in the window and never sent.
    backlog: u64,
    in_flight_at_end: u64,
    drain_secs: f64,
    /// This process's peak resident memory: server and load generator together.
    peak_rss_mb: f64,
}

#[derive(Debug, Serialize)]
struct KindReport {
    kind: &'static str,
    interval_secs: f64,
    offered: u64,
    sent: u64,
    ok: u64,
    offered_per_sec: f64,
    /// Successful answers received within the window, per second of it.
    achieved_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: BTreeMap<String, u64>,
    backlog: u64,
}

#[derive(Debug, Serialize)]
struct Records {
    offered: u64,
    /// Acknowledged by the server as newly stored.
    stored: u64,
    /// Counted in the database after the run.
    counted: i64,
    offered_per_sec: f64,
    /// Acknowledged within the window, per second of it.
    stored_per_sec: f64,
}

impl Run<'_> {
    pub(super) fn report(self, tallies: [Tally; 4]) -> Report {
        let window = self.args.minutes * 60.0;
        let mut all = Tally::default();
        let mut kinds = Vec::new();
        for (i, mut t) in tallies.into_iter().enumerate() {
            let (kind, backlog) = (KINDS[i], self.offered.backlog[i]);
            all.offered += t.offered;
            all.sent += t.sent;
            all.ok += t.ok;
            all.ok_in_window += t.ok_in_window;
            for (why, n) in &t.errors {
                *all.errors.entry(why.clone()).or_default() += n;
            }
            all.records_offered += t.records_offered;
            all.records_stored += t.records_stored;
            all.records_stored_in_window += t.records_stored_in_window;
            all.latencies_us.extend_from_slice(&t.latencies_us);
            kinds.push(kind_report(
                kind.name(),
                self.intervals[i],
                &mut t,
                backlog,
                window,
            ));
        }
        let backlog = self.offered.backlog.iter().sum();
        Report {
            backend: self.backend,
            ingest_writers: match self.ingest {
                tally_service::group_commit::IngestMode::Grouped { writers, .. } => writers,
                tally_service::group_commit::IngestMode::OneByOne => 0,
            },
            agents: self.args.agents,
            cycle_secs: self.args.cycle_secs,
            window_secs: window,
            in_flight: self.args.in_flight,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            seed_secs: self.seeding.as_secs_f64(),
            records: Records {
                offered: all.records_offered,
                stored: all.records_stored,
                counted: self.counted,
                offered_per_sec: all.records_offered as f64 / window,
                stored_per_sec: all.records_stored_in_window as f64 / window,
            },
            total: kind_report("total", f64::NAN, &mut all, backlog, window),
            kinds,
            backlog,
            in_flight_at_end: self.offered.in_flight_at_end,
            drain_secs: self.offered.drain.as_secs_f64(),
            peak_rss_mb: peak_rss_kb().map_or(f64::NAN, |kb| kb as f64 / 1024.0),
        }
    }
}

fn kind_report(
    kind: &'static str,
    interval_secs: f64,
    t: &mut Tally,
    backlog: u64,
    window: f64,
) -> KindReport {
    t.latencies_us.sort_unstable();
    let pick = |p: f64| -> f64 {
        let n = t.latencies_us.len();
        if n == 0 {
            return f64::NAN;
        }
        // Nearest rank: the smallest latency at least p of the requests did not exceed.
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
        t.latencies_us[rank - 1] as f64 / 1000.0
    };
    KindReport {
        kind,
        interval_secs,
        offered: t.offered,
        sent: t.sent,
        ok: t.ok,
        offered_per_sec: t.offered as f64 / window,
        achieved_per_sec: t.ok_in_window as f64 / window,
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        max_ms: pick(1.0),
        errors: std::mem::take(&mut t.errors),
        backlog,
    }
}

/// This process's peak resident memory (`VmHWM`), in kB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub(super) fn print_report(r: &Report) {
    println!(
        "tally bench fleet: {}, {} agents, cycle {} s, {:.0} s window, {} requests in flight at most",
        r.backend, r.agents, r.cycle_secs, r.window_secs, r.in_flight
    );
    match r.ingest_writers {
        0 => println!("group commit off: each upload and heartbeat its own transaction"),
        n => println!("group commit on: {n} writer(s), each taking every request waiting"),
    }
    println!(
        "{} cores, shared by the server and this load generator (one process)",
        r.cores
    );
    println!(
        "seeded {} devices and agents in {:.1} s",
        r.agents, r.seed_secs
    );
    println!(
        "{:<10} {:>9} {:>10} {:>11} {:>9} {:>9} {:>9} {:>8}  errors",
        "request", "every s", "offered/s", "achieved/s", "p50 ms", "p99 ms", "max ms", "backlog"
    );
    for k in r.kinds.iter().chain([&r.total]) {
        let errors = match k.errors.is_empty() {
            true => "none".to_string(),
            false => k
                .errors
                .iter()
                .map(|(why, n)| format!("{why}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let every = match k.interval_secs.is_nan() {
            true => "-".to_string(),
            false => format!("{:.1}", k.interval_secs),
        };
        println!(
            "{:<10} {:>9} {:>10.1} {:>11.1} {:>9.1} {:>9.1} {:>9.1} {:>8}  {errors}",
            k.kind,
            every,
            k.offered_per_sec,
            k.achieved_per_sec,
            k.p50_ms,
            k.p99_ms,
            k.max_ms,
            k.backlog
        );
    }
    let rec = &r.records;
    println!(
        "records   : offered {:.1}/s, stored {:.1}/s; {} acknowledged, {} in the database",
        rec.offered_per_sec, rec.stored_per_sec, rec.stored, rec.counted
    );
    println!(
        "backlog   : {} requests due and never sent; {} in flight at the end, answered within {:.1} s",
        r.backlog, r.in_flight_at_end, r.drain_secs
    );
    println!(
        "peak RSS  : {:.0} MB (server and load generator)",
        r.peak_rss_mb
    );
}
