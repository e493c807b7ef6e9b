//! What the server counts as it works, for `/metrics`: ingest, upload latency, HTTP answers by
//! status and maintenance-task runs. Kept in memory per process (Prometheus scrapes every
//! replica and sums); what the database knows (agents, backlogs, tasks' last runs) is read at
//! scrape time instead, so replicas agree on it. Plain atomics and a mutex: the hot path (an
//! upload) costs a few uncontended additions.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency buckets: an upload takes milliseconds when the
/// database keeps up and seconds when it does not; the buckets resolve both.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A Prometheus histogram with [`LATENCY_BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations at or under each bound (not yet cumulative).
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    /// Cumulative counts per bound, the total count and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut running = 0;
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| {
                running += n.load(Relaxed);
                (*bound, running)
            })
            .collect();
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        (buckets, self.count.load(Relaxed), sum)
    }
}

/// One maintenance task's runs in this process.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TaskRuns {
    pub ok: u64,
    pub failed: u64,
    pub seconds: f64,
}

/// The process's counters.
#[derive(Debug, Default)]
pub struct Telemetry {
    /// Usage records stored from agents' batches (new ones, not replays).
    pub ingest_records: AtomicU64,
    /// Records sent again (already stored): a sign of lost acknowledgements.
    pub ingest_duplicates: AtomicU64,
    pub ingest_batches: AtomicU64,
    /// Time from an upload's request to its answer, body included.
    pub upload_latency: Histogram,
    responses: Mutex<BTreeMap<u16, u64>>,
    tasks: Mutex<BTreeMap<&'static str, TaskRuns>>,
}

impl Telemetry {
    pub fn ingested(&self, stored: u64, duplicates: u64) {
        self.ingest_batches.fetch_add(1, Relaxed);
        self.ingest_records.fetch_add(stored, Relaxed);
        self.ingest_duplicates.fetch_add(duplicates, Relaxed);
    }

    pub fn responded(&self, status: u16) {
        let mut all = self.responses.lock().unwrap_or_else(|p| p.into_inner());
        *all.entry(status).or_default() += 1;
    }

    /// Responses so far, by status.
    pub fn responses(&self) -> BTreeMap<u16, u64> {
        self.responses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn task_ran(&self, task: &'static str, took: Duration, ok: bool) {
        let mut all = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let runs = all.entry(task).or_default();
        if ok {
            runs.ok += 1;
        } else {
            runs.failed += 1;
        }
        runs.seconds += took.as_secs_f64();
    }

    /// Task runs so far, by task name.
    pub fn task_runs(&self) -> BTreeMap<&'static str, TaskRuns> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_the_sum_is_in_seconds() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(200));
        h.observe(Duration::from_secs(60));
        let (buckets, count, sum) = h.snapshot();
        assert_eq!(buckets[0], (0.005, 1));
        assert_eq!(buckets[5], (0.25, 2));
        assert_eq!(
            buckets.last().unwrap().1,
            2,
            "over the last bound: only in +Inf"
        );
        assert_eq!(count, 3);
        assert!((sum - 60.203).abs() < 1e-9);
    }
}
