//! The transform: process events in, usage records out. Matches programs against the rules
//! (one [`RuleIndex`], shared with the watcher's filter), runs `tally-core`'s record state
//! machine, and writes the records it makes to the spool together with the metering state
//! that produced them, once a checkpoint, so that after `kill -9` the agent continues its
//! instances under the same ids and closes those that ended meanwhile at its last heartbeat.
//! It never waits for the server: the spool's write wakes the uploader.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_core::metering::{meter_data_id, Instance, Meter};
use tally_core::wire::v1::{UsageRecordV1, UserRef};
use tally_core::{MeteringRule, RuleIndex};

use crate::identity::Identities;
use crate::procfs::{self, Clock, ProcessInfo};
use crate::spool::{Spool, SpoolError};
use crate::watcher::{Event, Interest};

/// Why the meter could not keep its records and state.
#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("the saved metering state is damaged: {0}")]
    DamagedState(serde_json::Error),
}

/// Pending records that make a checkpoint come early: one upload's worth.
const FLUSH_AT: usize = 1000;

/// A metered process: its start (a reused pid starts later), its instance and its program.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tracked {
    start_ticks: u64,
    meter_data_id: String,
    exe: PathBuf,
}

/// What the agent persists to continue after a restart: written with the records it produced.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Metering {
    boot_id: String,
    meter: Meter,
    pids: BTreeMap<u32, Tracked>,
}

const METERING: &str = "metering";
const HEARTBEAT: &str = "heartbeat";

/// The client's UTC offset, read at most once a minute: it changes twice a year, and reading
/// it checks the time zone files, which would cost system calls for every process.
fn utc_offset_minutes() -> i32 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static CACHED: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = Utc::now().timestamp() / 60;
    let cached = CACHED.load(Ordering::Relaxed);
    if cached != i64::MIN && cached >> 32 == now {
        return cached as i32;
    }
    let offset = chrono::Local::now().offset().local_minus_utc() / 60;
    CACHED.store((now << 32) | i64::from(offset as u32), Ordering::Relaxed);
    offset
}

/// The metering stage's state between events.
pub struct MeterStage {
    agent_id: String,
    spool: Spool,
    clock: Clock,
    accounts: procfs::Accounts,
    identities: Identities,
    /// The enabled rules, indexed; the watcher's [`Interest`] holds the same index.
    rules: Arc<RuleIndex>,
    interest: Interest,
    metering: Metering,
    /// Records made since the last flush, and whether the state changed: written together at
    /// the next checkpoint, so a busy machine costs one transaction a second, not one per
    /// process. A crash loses none of it: the saved state still holds those instances, and
    /// recovery closes them at the heartbeat.
    pending: Vec<UsageRecordV1>,
    dirty: bool,
    /// Metered processes found gone at the last cycle whose exit the watcher has not reported
    /// yet; still gone at the next cycle, they are closed without it.
    missing: Vec<(u32, u64)>,
}

impl MeterStage {
    pub fn new(agent_id: String, spool: Spool, clock: Clock) -> Self {
        Self {
            agent_id,
            spool,
            accounts: procfs::Accounts::default(),
            identities: Identities::default(),
            rules: Arc::default(),
            interest: Interest::default(),
            metering: Metering {
                boot_id: clock.boot_id.clone(),
                ..Metering::default()
            },
            pending: Vec::new(),
            dirty: false,
            missing: Vec::new(),
            clock,
        }
    }

    /// What the watcher reads: the names the rules mention.
    pub fn interest(&self) -> Interest {
        self.interest.clone()
    }

    /// Takes the policy's rules; returns whether the enabled ones changed (then processes
    /// already running may need metering: see [`MeterStage::rescan`]).
    pub fn set_rules(&mut self, rules: &[MeteringRule]) -> bool {
        let index = RuleIndex::enabled(rules);
        if index.rules() == self.rules.rules() {
            return false;
        }
        self.rules = Arc::new(index);
        self.interest.set(self.rules.clone());
        true
    }

    /// Writes records together with the metering state that produced them; returns whether
    /// the state was written. On a full disk the records are dropped and counted by the spool
    /// (reported to the server as dropped) and metering goes on: the state is written again at
    /// the next checkpoint.
    async fn save(&mut self, records: &[UsageRecordV1]) -> Result<bool, MeterError> {
        let state = serde_json::to_string(&self.metering).map_err(SpoolError::from)?;
        match self.spool.push(records, Some((METERING, &state))).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_full() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes pending records and state durable, and notes the heartbeat: every instance in the
    /// saved state was running at this time.
    pub async fn flush(&mut self) -> Result<(), MeterError> {
        if self.dirty || !self.pending.is_empty() {
            let records = std::mem::take(&mut self.pending);
            self.dirty = !self.save(&records).await?;
        }
        match self
            .spool
            .put_state(HEARTBEAT, &Utc::now().to_rfc3339())
            .await
        {
            // A heartbeat missed on a full disk only makes recovery close instances earlier.
            Err(e) if e.is_full() => Ok(()),
            done => Ok(done?),
        }
    }

    /// After a start: instances still running continue under their ids; those that ended while
    /// the agent was not running are closed at its last heartbeat, flagged `EndNotCaptured`.
    pub async fn recover(&mut self) -> Result<(), MeterError> {
        let Some(saved) = self.spool.state(METERING).await? else {
            return Ok(());
        };
        let saved: Metering = serde_json::from_str(&saved).map_err(MeterError::DamagedState)?;
        let heartbeat = self
            .spool
            .state(HEARTBEAT)
            .await?
            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let same_boot = saved.boot_id == self.clock.boot_id;
        self.metering = Metering {
            boot_id: self.clock.boot_id.clone(),
            ..saved
        };
        let mut closed = Vec::new();
        for (pid, tracked) in std::mem::take(&mut self.metering.pids) {
            let alive =
                same_boot && procfs::stat(pid).map(|s| s.start_ticks) == Some(tracked.start_ticks);
            if alive {
                self.metering.pids.insert(pid, tracked);
            } else {
                closed.extend(self.metering.meter.end(
                    &tracked.meter_data_id,
                    heartbeat,
                    false,
                    utc_offset_minutes(),
                ));
            }
        }
        tracing::info!(
            continued = self.metering.pids.len(),
            closed = closed.len(),
            "metering state recovered"
        );
        self.dirty = !self.save(&closed).await?;
        Ok(())
    }

    pub async fn on_events(&mut self, events: Vec<Event>) -> Result<(), MeterError> {
        let mut records = Vec::new();
        let mut changed = false;
        for event in events {
            match event {
                Event::Exec(p) => changed |= self.on_exec(&p, &mut records),
                Event::Exit {
                    pid,
                    start_ticks,
                    at,
                } => {
                    let ended = self.end(pid, start_ticks, at, true);
                    changed |= ended.is_some();
                    records.extend(ended);
                }
                Event::Resync => {
                    records.extend(self.sweep());
                    changed = true;
                }
            }
        }
        self.pending.extend(records);
        self.dirty |= changed;
        if self.pending.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// A process runs a program. Returns whether the metering state changed.
    fn on_exec(&mut self, p: &ProcessInfo, records: &mut Vec<UsageRecordV1>) -> bool {
        let mut changed = false;
        if let Some(t) = self.metering.pids.get(&p.pid) {
            if t.start_ticks == p.start_ticks && t.exe == p.exe {
                return false;
            }
            // The pid now runs another program: it exec'd (same start) or the old process
            // ended unseen and the pid was reused.
            let exec = t.start_ticks == p.start_ticks;
            records.extend(self.end(p.pid, None, Utc::now(), exec));
            changed = true;
        }
        changed | self.consider(p)
    }

    /// Ends the metered process `pid`, if it is the one started at `start_ticks`.
    fn end(
        &mut self,
        pid: u32,
        start_ticks: Option<u64>,
        at: DateTime<Utc>,
        captured: bool,
    ) -> Option<UsageRecordV1> {
        let tracked = self.metering.pids.get(&pid)?;
        if start_ticks.is_some_and(|t| t != tracked.start_ticks) {
            return None;
        }
        let tracked = self.metering.pids.remove(&pid)?;
        self.metering
            .meter
            .end(&tracked.meter_data_id, at, captured, utc_offset_minutes())
    }

    /// Metered processes that are gone.
    fn gone(&self) -> Vec<(u32, u64)> {
        self.metering
            .pids
            .iter()
            .filter(|(pid, t)| procfs::stat(**pid).map(|s| s.start_ticks) != Some(t.start_ticks))
            .map(|(pid, t)| (*pid, t.start_ticks))
            .collect()
    }

    /// Ends the given gone processes; their end was not seen.
    fn close_unseen(&mut self, gone: Vec<(u32, u64)>) -> Vec<UsageRecordV1> {
        let now = Utc::now();
        gone.into_iter()
            .filter_map(|(pid, ticks)| self.end(pid, Some(ticks), now, false))
            .collect()
    }

    /// Ends every metered process that is gone (after events were lost).
    fn sweep(&mut self) -> Vec<UsageRecordV1> {
        let gone = self.gone();
        self.close_unseen(gone)
    }

    /// Starts metering `p` if a rule matches it. Returns whether it did.
    fn consider(&mut self, p: &ProcessInfo) -> bool {
        // Cheap name check first; the package lookup runs only for candidates.
        if !self
            .rules
            .is_candidate(&p.invoked_as, &procfs::file_name(&p.exe))
        {
            return false;
        }
        let file = self.identities.identify(&p.invoked_as, &p.exe);
        if self.rules.matching(&file).next().is_none() {
            return false;
        }
        let mut id = meter_data_id(&self.agent_id, &self.clock.boot_id, p.pid, p.start_ticks);
        if self.metering.meter.is_open(&id) {
            // The same process exec'd a second metered program: a new instance.
            id = format!("{id}:{}", Utc::now().timestamp_millis());
        }
        let account = self.accounts.name(p.uid);
        tracing::debug!(pid = p.pid, file = %file.file_name, "metering");
        self.metering.meter.start(Instance {
            meter_data_id: id.clone(),
            file,
            user: UserRef {
                account,
                full_name: None,
            },
            in_ts_session: p.remote,
            start: p.start,
            start_captured: true,
        });
        self.metering.pids.insert(
            p.pid,
            Tracked {
                start_ticks: p.start_ticks,
                meter_data_id: id,
                exe: p.exe.clone(),
            },
        );
        true
    }

    /// Processes already running that a changed policy now meters.
    pub async fn rescan(&mut self) -> Result<(), MeterError> {
        let candidates: Vec<ProcessInfo> = procfs::pids()
            .filter_map(|pid| {
                procfs::read_process(&self.clock, pid, |e, n| self.interest.wants(e, n))
            })
            .collect();
        self.on_events(candidates.into_iter().map(Event::Exec).collect())
            .await
    }

    /// The end of a reporting cycle: a record for every instance, and the end of any whose
    /// exit went unreported for a whole cycle.
    pub async fn report(&mut self) -> Result<(), MeterError> {
        // A safety net, not a race with the watcher: only processes already missing at the
        // last cycle are closed here.
        let gone = self.gone();
        let overdue = gone
            .iter()
            .filter(|g| self.missing.contains(g))
            .copied()
            .collect();
        self.missing = gone;
        let swept = self.close_unseen(overdue);
        self.pending.extend(swept);
        let now = Utc::now();
        let cycle = self.metering.meter.report(now, utc_offset_minutes());
        self.pending.extend(cycle);
        self.dirty = true;
        self.flush().await
    }
}
