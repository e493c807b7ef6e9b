//! Tally's metering agent, shaped like a Vector pipeline: a source (a process [`watcher`]:
//! netlink or `/proc` polling) feeds a transform (rule matching and the usage-record state
//! machine of `tally-core`) that writes to a durable sink (the [`spool`]), which an uploader
//! drains to the server, deleting only what the server acknowledged.
//!
//! The metering state is written to the spool in the same transaction as the records it
//! produced, so after `kill -9` the agent continues its instances under the same ids and closes
//! those that ended meanwhile at its last heartbeat.

pub mod api;
pub mod identity;
pub mod inventory;
pub mod procfs;
pub mod spool;
pub mod watcher;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_core::metering::{meter_data_id, Instance, Meter};
use tally_core::wire::v1::{EnrollRequest, Policy, UsageBatch, UsageRecordV1, UserRef};
use tally_core::MeteringRule;
use tokio::sync::mpsc;

use crate::api::{Api, Credentials, Refused};
use crate::identity::Identities;
use crate::procfs::{Clock, ProcessInfo};
use crate::spool::Spool;
use crate::watcher::{Event, Interest, WatcherKind};

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub server: String,
    /// Needed only for the first start, to enrol.
    pub enroll_token: Option<String>,
    pub state_dir: PathBuf,
    /// How often `/proc` is read.
    pub poll_interval: Duration,
    /// Overrides the policy's reporting cycle (tests and demos use seconds).
    pub report_interval: Option<Duration>,
    /// How often the policy is re-read (cheap: an unchanged policy is a 304).
    pub policy_interval: Duration,
    pub ca_file: Option<PathBuf>,
    pub watcher: WatcherKind,
    /// Most records the spool holds while the server is unreachable.
    pub spool_max_records: u64,
    /// How often metering state and finished records are made durable, with a heartbeat (the
    /// bound used to close instances that ended while the agent was not running).
    pub checkpoint_interval: Duration,
    /// How long records wait in the spool before an upload; longer means fewer, larger
    /// uploads.
    pub upload_interval: Duration,
    /// How often the inventory is read to see whether it changed.
    pub inventory_check: Duration,
}

impl AgentConfig {
    /// The defaults for a real deployment.
    pub fn new(server: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        Self {
            server: server.into(),
            enroll_token: None,
            state_dir: state_dir.into(),
            poll_interval: Duration::from_secs(1),
            report_interval: None,
            policy_interval: Duration::from_secs(60),
            ca_file: None,
            watcher: WatcherKind::Auto,
            spool_max_records: 100_000,
            checkpoint_interval: Duration::from_secs(1),
            upload_interval: Duration::from_secs(10),
            inventory_check: Duration::from_secs(3600),
        }
    }
}

/// Records per upload.
const UPLOAD_BATCH: i64 = 1000;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Loads the stored credentials, or enrols with the token and stores them (mode 0600).
async fn credentials(api: &Api, config: &AgentConfig) -> Result<Credentials> {
    let path = config.state_dir.join("agent.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is damaged; delete it to enrol again", path.display()));
    }
    let token = config
        .enroll_token
        .clone()
        .context("this agent is not enrolled yet; pass --enroll-token (tally enrollment create)")?;
    let request = EnrollRequest {
        enrollment_token: token,
        host_name: host_name(),
        fqdn: None,
        os: std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            }),
        serial: None,
    };
    let enrolled = api.enroll(&request).await?;
    let creds = Credentials {
        agent_id: enrolled.agent_id,
        agent_secret: enrolled.agent_secret,
        device_id: enrolled.device_id,
    };
    write_private(&path, &serde_json::to_vec(&creds)?)?;
    tracing::info!(agent = %creds.agent_id, device = creds.device_id, "enrolled");
    Ok(creds)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

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

/// The agent's running state between ticks.
struct Agent {
    config: AgentConfig,
    api: Api,
    creds: Credentials,
    spool: Spool,
    clock: Clock,
    accounts: procfs::Accounts,
    identities: Identities,
    policy: Option<Policy>,
    etag: Option<String>,
    interest: Interest,
    metering: Metering,
    /// Records per upload; halved while the server refuses a batch, to find the bad record.
    batch_limit: i64,
    /// The hash and time of the last inventory the server took.
    inventory_sent: Option<(String, DateTime<Utc>)>,
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

impl Agent {
    fn rules(&self) -> &[MeteringRule] {
        self.policy.as_ref().map_or(&[], |p| p.rules.as_slice())
    }

    /// Re-reads the policy; returns whether the rules changed.
    async fn refresh_policy(&mut self) -> bool {
        let cache = self.config.state_dir.join("policy.json");
        let before = self.rules().to_vec();
        match self.api.policy(&self.creds, self.etag.as_deref()).await {
            Ok(Some((policy, etag))) => {
                tracing::info!(rules = policy.rules.len(), "policy updated");
                if let Err(e) =
                    std::fs::write(&cache, serde_json::to_vec(&policy).unwrap_or_default())
                {
                    tracing::warn!(error = %e, "cannot cache the policy");
                }
                self.policy = Some(policy);
                self.etag = Some(etag);
            }
            Ok(None) => {}
            Err(e) if self.policy.is_none() => {
                tracing::warn!(error = %e, "server unreachable; using the cached policy");
                self.policy = std::fs::read(&cache)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
            }
            Err(e) => tracing::warn!(error = %e, "policy refresh failed; keeping the current one"),
        }
        let changed = self.rules() != before.as_slice();
        if changed {
            self.interest.set(self.rules());
        }
        changed
    }

    /// Writes records together with the metering state that produced them.
    async fn save(&mut self, records: &[UsageRecordV1]) -> Result<()> {
        let state = serde_json::to_string(&self.metering)?;
        self.spool.push(records, Some((METERING, &state))).await
    }

    /// Makes pending records and state durable, and notes the heartbeat: every instance in the
    /// saved state was running at this time.
    async fn flush(&mut self) -> Result<()> {
        if self.dirty || !self.pending.is_empty() {
            let records = std::mem::take(&mut self.pending);
            self.save(&records).await?;
            self.dirty = false;
        }
        self.spool
            .put_state(HEARTBEAT, &Utc::now().to_rfc3339())
            .await
    }

    /// After a start: instances still running continue under their ids; those that ended while
    /// the agent was not running are closed at its last heartbeat, flagged `EndNotCaptured`.
    async fn recover(&mut self) -> Result<()> {
        let Some(saved) = self.spool.state(METERING).await? else {
            return Ok(());
        };
        let saved: Metering =
            serde_json::from_str(&saved).context("the saved metering state is damaged")?;
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
        self.save(&closed).await
    }

    async fn on_events(&mut self, events: Vec<Event>) -> Result<()> {
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
        if self.pending.len() >= UPLOAD_BATCH as usize {
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
        let original = procfs::file_name(&p.exe);
        let named = |r: &&MeteringRule| {
            r.spec.file_name.eq_ignore_ascii_case(&p.invoked_as)
                || r.spec.original_file_name.eq_ignore_ascii_case(&original)
        };
        // Cheap name check first; the package lookup runs only for candidates.
        if !self.rules().iter().any(|r| named(&r)) {
            return false;
        }
        let file = self.identities.identify(&p.invoked_as, &p.exe);
        if !self
            .rules()
            .iter()
            .any(|r| r.spec.enabled && r.spec.matches(&file))
        {
            return false;
        }
        let mut id = meter_data_id(
            &self.creds.agent_id,
            &self.clock.boot_id,
            p.pid,
            p.start_ticks,
        );
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
    async fn rescan(&mut self) -> Result<()> {
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
    async fn report(&mut self) -> Result<()> {
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

    /// Sends the inventory when it changed or a day (the policy's interval) has passed.
    async fn inventory(&mut self) {
        let inventory = tokio::task::spawn_blocking(inventory::collect)
            .await
            .expect("inventory collection does not panic");
        let every = self
            .policy
            .as_ref()
            .map_or(86_400, |p| p.inventory_interval_secs) as i64;
        let due = match &self.inventory_sent {
            Some((hash, at)) => {
                *hash != inventory.hash || Utc::now() - *at > chrono::Duration::seconds(every)
            }
            None => true,
        };
        if !due {
            return;
        }
        match self.api.inventory(&self.creds, &inventory).await {
            Ok(()) => {
                tracing::info!(packages = inventory.software.len(), "inventory sent");
                self.inventory_sent = Some((inventory.hash, Utc::now()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "inventory upload failed; it is sent again at the next check")
            }
        }
    }

    /// Uploads spooled records until the spool is empty or the server fails. A batch the
    /// server refuses is halved until the record it objects to stands alone; that one is moved
    /// aside and reported as dropped, so one bad record never blocks the rest.
    async fn drain(&mut self) -> Result<()> {
        loop {
            let dropped = self.spool.dropped().await?;
            let batch = self.spool.peek(self.batch_limit).await?;
            let (first, last, records) = match batch {
                Some(b) => (b.first, b.last, b.records),
                None if dropped > 0 => (0, -1, Vec::new()),
                None => return Ok(()),
            };
            let size = records.len();
            let upload = UsageBatch {
                batch_id: format!("{}-{first}-{last}-{dropped}", self.creds.agent_id),
                device_id: Some(self.creds.device_id),
                records,
                dropped,
            };
            match self.api.upload(&self.creds, &upload).await {
                Ok(_) => {
                    self.spool.ack(first, last, dropped).await?;
                    self.batch_limit = UPLOAD_BATCH;
                    if size == 0 {
                        return Ok(());
                    }
                }
                Err(e) if e.is::<Refused>() && size <= 1 && first <= last => {
                    self.spool.reject(first, &e.to_string()).await?;
                }
                Err(e) if e.is::<Refused>() && size > 1 => {
                    self.batch_limit = (size as i64 / 2).max(1);
                    tracing::warn!(error = %e, next_batch = self.batch_limit, "batch refused; retrying smaller batches to find the record at fault");
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Exponential backoff with jitter after `failures` consecutive failures.
fn backoff(failures: u32) -> Duration {
    let base = Duration::from_millis(500) * 2u32.saturating_pow(failures.min(7));
    let capped = base.min(MAX_BACKOFF);
    let jitter = rand::random::<f64>() * 0.5 + 0.75;
    capped.mul_f64(jitter)
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    std::fs::create_dir_all(&config.state_dir).with_context(|| {
        format!(
            "cannot create the state directory {}",
            config.state_dir.display()
        )
    })?;
    let api = Api::new(&config.server, config.ca_file.as_deref())?;
    let creds = credentials(&api, &config).await?;
    let spool = Spool::open(&config.state_dir.join("spool.db"), config.spool_max_records).await?;
    let clock = Clock::read()?;
    let mut agent = Agent {
        api,
        creds,
        spool,
        accounts: procfs::Accounts::default(),
        identities: Identities::default(),
        policy: None,
        etag: None,
        interest: Interest::default(),
        metering: Metering {
            boot_id: clock.boot_id.clone(),
            ..Metering::default()
        },
        batch_limit: UPLOAD_BATCH,
        inventory_sent: None,
        pending: Vec::new(),
        dirty: false,
        missing: Vec::new(),
        clock,
        config,
    };
    agent.recover().await?;
    agent.refresh_policy().await;
    let watcher = watcher::open(
        agent.config.watcher,
        agent.clock.clone(),
        agent.interest.clone(),
        agent.config.poll_interval,
    )?;
    let watcher_name = watcher.name();
    let (events_tx, mut events) = mpsc::channel(1024);
    std::thread::Builder::new()
        .name("tally-watcher".into())
        .spawn(move || watcher.run(events_tx))
        .context("cannot start the process watcher thread")?;
    let report_every = agent
        .config
        .report_interval
        .or_else(|| {
            agent
                .policy
                .as_ref()
                .map(|p| Duration::from_secs(p.report_interval_secs))
        })
        .unwrap_or(Duration::from_secs(900));
    tracing::info!(
        watcher = watcher_name,
        poll_ms = agent.config.poll_interval.as_millis() as u64,
        report_secs = report_every.as_secs_f64(),
        "agent started"
    );
    let mut report =
        tokio::time::interval_at(tokio::time::Instant::now() + report_every, report_every);
    let mut housekeeping = tokio::time::interval(agent.config.policy_interval);
    let mut checkpoint = tokio::time::interval(agent.config.checkpoint_interval);
    let mut inventory = tokio::time::interval(agent.config.inventory_check);
    let mut next_upload = tokio::time::Instant::now();
    let mut failures = 0u32;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            batch = events.recv() => match batch {
                Some(batch) => agent.on_events(batch).await?,
                None => anyhow::bail!("the process watcher stopped; restart the agent"),
            },
            _ = report.tick() => agent.report().await?,
            _ = checkpoint.tick() => agent.flush().await?,
            _ = inventory.tick() => agent.inventory().await,
            _ = housekeeping.tick() => {
                if agent.refresh_policy().await {
                    agent.rescan().await?;
                }
                if let Err(e) = agent.api.heartbeat(&agent.creds).await {
                    tracing::debug!(error = %e, "heartbeat failed");
                }
            }
            _ = tokio::time::sleep_until(next_upload) => {
                match agent.drain().await {
                    Ok(()) => {
                        failures = 0;
                        next_upload = tokio::time::Instant::now() + agent.config.upload_interval;
                    }
                    Err(e) => {
                        failures += 1;
                        let wait = backoff(failures);
                        let spooled = agent.spool.len().await.unwrap_or(-1);
                        tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, spooled, "upload failed; records stay in the spool");
                        next_upload = tokio::time::Instant::now() + wait;
                    }
                }
            }
        }
    }
    // Report instances still running up to now, so nothing metered so far is lost.
    agent.report().await?;
    if let Err(e) = agent.drain().await {
        tracing::warn!(error = %e, "stopping with records in the spool; they are sent at the next start");
    }
    tracing::info!("agent stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) < backoff(5));
        assert!(backoff(30) <= super::MAX_BACKOFF.mul_f64(1.25));
    }
}
