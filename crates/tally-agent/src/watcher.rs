//! The agent's source: process watchers. Two implementations of one trait, each running on its
//! own thread and sending batches of [`Event`]s to the agent:
//!
//! - [`Netlink`], the kernel's process connector: the kernel tells us of every `exec` and exit
//!   as it happens, so even a 10 ms program is seen and its end time is exact.
//! - [`Polling`], reading `/proc` at an interval: works everywhere (containers, network
//!   namespaces without the connector), but a program shorter than the interval can be missed
//!   and an end is known only to within one interval.
//!
//! Both read a process only when its names could match a rule ([`Interest`]), which keeps the
//! cost of a busy machine's thousands of short processes down to two small reads each.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tally_core::RuleIndex;
use tokio::sync::mpsc;

use crate::procfs::{self, Clock, ProcessInfo, Stat};

/// Something a watcher saw.
#[derive(Debug, Clone)]
pub enum Event {
    /// A process that could match a rule is running a program: it started, exec'd, or was
    /// already running when the watcher began.
    Exec(ProcessInfo),
    /// A process ended. `start_ticks`, when known, tells it apart from a later process that
    /// reuses the pid.
    Exit {
        pid: u32,
        start_ticks: Option<u64>,
        at: DateTime<Utc>,
    },
    /// Events may have been lost (the kernel's buffer overflowed): the agent must check every
    /// process it meters. A fresh `Exec` for every running candidate follows.
    Resync,
}

/// The rules' index, shared with the watcher thread so it reads only processes that could
/// match: one whose invoked name or executable's file name some rule mentions.
#[derive(Debug, Clone, Default)]
pub struct Interest(Arc<RwLock<Arc<RuleIndex>>>);

impl Interest {
    pub fn set(&self, rules: Arc<RuleIndex>) {
        *self.0.write().expect("interest lock") = rules;
    }

    pub fn wants(&self, exe: &Path, invoked_as: &str) -> bool {
        let rules = self.0.read().expect("interest lock");
        rules.mentions(invoked_as) || rules.mentions(&procfs::file_name(exe))
    }
}

/// Which watcher to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WatcherKind {
    /// Netlink when it can be opened, else polling.
    #[default]
    Auto,
    Netlink,
    Poll,
}

impl std::str::FromStr for WatcherKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "netlink" => Ok(Self::Netlink),
            "poll" => Ok(Self::Poll),
            other => Err(format!(
                "unknown watcher {other:?}; use auto, netlink or poll"
            )),
        }
    }
}

/// A process watcher: runs on its own thread until the agent drops the receiver.
pub trait Watcher: Send + 'static {
    fn name(&self) -> &'static str;
    fn run(self: Box<Self>, events: mpsc::Sender<Vec<Event>>);
}

/// Opens the watcher `kind` asks for, falling back from netlink to polling under `Auto` and
/// saying why.
pub fn open(
    kind: WatcherKind,
    clock: Clock,
    interest: Interest,
    poll_interval: Duration,
) -> anyhow::Result<Box<dyn Watcher>> {
    let polling = || {
        Box::new(Polling {
            clock: clock.clone(),
            interest: interest.clone(),
            interval: poll_interval,
        }) as Box<dyn Watcher>
    };
    match kind {
        WatcherKind::Poll => Ok(polling()),
        WatcherKind::Netlink => Ok(Box::new(Netlink::open(clock.clone(), interest.clone())?)),
        WatcherKind::Auto => match Netlink::open(clock.clone(), interest.clone()) {
            Ok(netlink) => Ok(Box::new(netlink)),
            Err(e) => {
                tracing::warn!(error = %e, "the netlink process connector is unavailable; polling /proc instead (short programs can be missed; run the agent as root in the host's network namespace to use netlink)");
                Ok(polling())
            }
        },
    }
}

/// An `Exec` for every running process the rules could match.
fn scan(clock: &Clock, interest: &Interest) -> Vec<Event> {
    procfs::pids()
        .filter_map(|pid| procfs::read_process(clock, pid, |e, n| interest.wants(e, n)))
        .map(Event::Exec)
        .collect()
}

/// Reads `/proc` every `interval`.
pub struct Polling {
    clock: Clock,
    interest: Interest,
    interval: Duration,
}

impl Watcher for Polling {
    fn name(&self) -> &'static str {
        "proc polling"
    }

    fn run(self: Box<Self>, events: mpsc::Sender<Vec<Event>>) {
        let mut seen: HashMap<u32, Stat> = HashMap::new();
        loop {
            let batch = self.poll(&mut seen);
            if !batch.is_empty() && events.blocking_send(batch).is_err() {
                return;
            }
            if events.is_closed() {
                return;
            }
            std::thread::sleep(self.interval);
        }
    }
}

impl Polling {
    /// Differences since the last poll. A process whose command name changed under the same
    /// pid and start has exec'd since: it was a fork of its parent when last seen.
    fn poll(&self, seen: &mut HashMap<u32, Stat>) -> Vec<Event> {
        let now = Utc::now();
        let running = procfs::running();
        let mut batch = Vec::new();
        for (pid, old) in seen.iter() {
            if running.get(pid).map(|s| s.start_ticks) != Some(old.start_ticks) {
                batch.push(Event::Exit {
                    pid: *pid,
                    start_ticks: Some(old.start_ticks),
                    at: now,
                });
            }
        }
        for (&pid, stat) in &running {
            if seen.get(&pid) == Some(stat) {
                continue;
            }
            let wanted = |e: &Path, n: &str| self.interest.wants(e, n);
            if let Some(p) = procfs::read_process(&self.clock, pid, wanted) {
                batch.push(Event::Exec(p));
            }
        }
        *seen = running;
        batch
    }
}

/// The kernel's process connector (`NETLINK_CONNECTOR`, `CN_IDX_PROC`).
pub struct Netlink {
    socket: netlink::Socket,
    clock: Clock,
    interest: Interest,
}

impl Netlink {
    pub fn open(clock: Clock, interest: Interest) -> std::io::Result<Self> {
        Ok(Self {
            socket: netlink::Socket::subscribe()?,
            clock,
            interest,
        })
    }

    fn translate(&self, event: netlink::ProcEvent) -> Option<Event> {
        match event {
            netlink::ProcEvent::Exec { pid } => {
                procfs::read_process(&self.clock, pid, |e, n| self.interest.wants(e, n))
                    .map(Event::Exec)
            }
            netlink::ProcEvent::Exit { pid, timestamp_ns } => Some(Event::Exit {
                pid,
                start_ticks: None,
                at: monotonic_to_wall(timestamp_ns),
            }),
        }
    }
}

/// The wall-clock time of a kernel timestamp on `CLOCK_MONOTONIC` (the proc connector's), so
/// an exit is dated when it happened, not when a busy agent got round to reading it.
fn monotonic_to_wall(timestamp_ns: u64) -> DateTime<Utc> {
    use nix::time::{clock_gettime, ClockId};
    let now = Utc::now();
    let Ok(mono) = clock_gettime(ClockId::CLOCK_MONOTONIC) else {
        return now;
    };
    let mono_ns = mono.tv_sec() as i128 * 1_000_000_000 + mono.tv_nsec() as i128;
    let ago_ns = (mono_ns - timestamp_ns as i128).clamp(0, i64::MAX as i128) as i64;
    now - chrono::Duration::nanoseconds(ago_ns)
}

impl Watcher for Netlink {
    fn name(&self) -> &'static str {
        "netlink"
    }

    fn run(self: Box<Self>, events: mpsc::Sender<Vec<Event>>) {
        // Subscribed first, then scanned: a process that starts in between is reported twice,
        // which the agent ignores, rather than not at all.
        if events
            .blocking_send(scan(&self.clock, &self.interest))
            .is_err()
        {
            return;
        }
        let mut batch: Vec<Event> = Vec::new();
        let mut since = std::time::Instant::now();
        loop {
            let received = match self.socket.receive() {
                Ok(raw) => raw.into_iter().filter_map(|e| self.translate(e)).collect(),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    tracing::warn!(
                        "process events were lost (kernel buffer overflow); rescanning /proc"
                    );
                    let mut rescan = vec![Event::Resync];
                    rescan.extend(scan(&self.clock, &self.interest));
                    rescan
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    Vec::new()
                }
                Err(e) => {
                    tracing::error!(error = %e, "the netlink socket failed; no more process events");
                    return;
                }
            };
            if batch.is_empty() {
                since = std::time::Instant::now();
            }
            batch.extend(received);
            // Events are read and timed here as they come; handing them to the agent a tenth
            // of a second at a time spares it a wake-up per process on a busy machine.
            if !batch.is_empty() && since.elapsed() >= COALESCE {
                if events.blocking_send(std::mem::take(&mut batch)).is_err() {
                    return;
                }
            } else if events.is_closed() {
                return;
            }
        }
    }
}

/// How long the netlink watcher gathers events before handing them over.
const COALESCE: Duration = Duration::from_millis(100);

pub mod netlink;

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(file: &str, original: &str) -> tally_core::MeteringRule {
        serde_json::from_value(serde_json::json!({
            "id": 1, "name": "r", "file_name": file, "original_file_name": original,
            "site_code": "S01", "origin": "manual", "updated_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn interest_is_case_insensitive_and_covers_both_names() {
        let interest = Interest::default();
        interest.set(Arc::new(RuleIndex::enabled(&[
            rule("Code", ""),
            rule("", "python3.11"),
        ])));
        assert!(interest.wants(Path::new("/usr/share/code/code"), "code"));
        assert!(interest.wants(Path::new("/usr/bin/python3.11"), "python3"));
        assert!(!interest.wants(Path::new("/usr/bin/vim"), "vi"));
    }

    #[test]
    fn a_kernel_timestamp_is_dated_on_the_wall_clock() {
        use nix::time::{clock_gettime, ClockId};
        let mono = clock_gettime(ClockId::CLOCK_MONOTONIC).unwrap();
        let mono_ns = mono.tv_sec() as u64 * 1_000_000_000 + mono.tv_nsec() as u64;
        let now = Utc::now();
        let a_second_ago = monotonic_to_wall(mono_ns - 1_000_000_000);
        let error = (now - chrono::Duration::seconds(1) - a_second_ago).num_milliseconds();
        assert!(error.abs() < 200, "off by {error} ms");
        assert!(
            monotonic_to_wall(mono_ns + 10_000_000_000) <= Utc::now(),
            "never in the future"
        );
    }

    #[test]
    fn polling_sees_a_new_process_and_its_end() {
        let interest = Interest::default();
        let name = format!("tally-watch-{}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join(&name);
        std::fs::copy("/bin/sleep", &program).unwrap();
        interest.set(Arc::new(RuleIndex::enabled(&[rule(&name, "")])));
        let polling = Polling {
            clock: Clock::read().unwrap(),
            interest,
            interval: Duration::from_millis(10),
        };
        let mut seen = HashMap::new();
        polling.poll(&mut seen);
        let mut child = std::process::Command::new(&program)
            .arg("5")
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let events = polling.poll(&mut seen);
        // Other processes come and go meanwhile; only the candidate is read and reported.
        let execs: Vec<u32> = events
            .iter()
            .filter_map(|e| match e {
                Event::Exec(p) => Some(p.pid),
                _ => None,
            })
            .collect();
        assert_eq!(execs, [child.id()], "{events:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        let events = polling.poll(&mut seen);
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::Exit { pid, .. } if *pid == child.id())));
    }
}
