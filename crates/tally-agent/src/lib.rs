//! Tally's metering agent, shaped like a Vector pipeline: a source (the `/proc` process watcher)
//! feeds a transform (rule matching and the usage-record state machine of `tally-core`) that
//! writes to a durable sink (the spool), which an uploader drains to the server, deleting only
//! what the server acknowledged.
//!
//! Built so far: enrolment, policy with ETag and an on-disk cache, `/proc` polling, file
//! identity from dpkg, the spool and the uploader with backoff. Not yet: the netlink watcher,
//! inventory collection, restart recovery of running instances, a bounded spool.

pub mod api;
pub mod identity;
pub mod procfs;
pub mod spool;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use tally_core::metering::{meter_data_id, Instance, Meter};
use tally_core::wire::v1::{EnrollRequest, Policy, UsageBatch, UserRef};
use tally_core::MeteringRule;

use crate::api::{Api, Credentials};
use crate::identity::Identities;
use crate::procfs::{Clock, ProcessInfo};
use crate::spool::Spool;

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

/// The agent's running state between ticks.
struct Agent {
    config: AgentConfig,
    api: Api,
    creds: Credentials,
    spool: Spool,
    clock: Clock,
    accounts: HashMap<u32, String>,
    identities: Identities,
    policy: Option<Policy>,
    etag: Option<String>,
    meter: Meter,
    /// Processes already looked at, by pid, with their start (a reused pid starts later).
    seen: HashMap<u32, u64>,
    /// Metered processes: pid → MeterDataID.
    metered: HashMap<u32, String>,
}

fn utc_offset_minutes() -> i32 {
    chrono::Local::now().offset().local_minus_utc() / 60
}

impl Agent {
    fn rules(&self) -> &[MeteringRule] {
        self.policy.as_ref().map_or(&[], |p| p.rules.as_slice())
    }

    async fn refresh_policy(&mut self) {
        let cache = self.config.state_dir.join("policy.json");
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
    }

    /// Starts metering new matching processes and ends those that are gone.
    async fn poll(&mut self) -> Result<()> {
        let now = Utc::now();
        let running = procfs::running();
        for (&pid, &ticks) in &running {
            if self.seen.get(&pid) == Some(&ticks) {
                continue;
            }
            self.seen.insert(pid, ticks);
            if let Some(p) = procfs::read_process(&self.clock, pid) {
                self.consider(&p);
            }
        }
        self.seen
            .retain(|pid, ticks| running.get(pid) == Some(ticks));
        let gone: Vec<u32> = self
            .metered
            .keys()
            .filter(|pid| !self.seen.contains_key(pid))
            .copied()
            .collect();
        let mut ended = Vec::new();
        for pid in gone {
            let id = self.metered.remove(&pid).expect("listed above");
            ended.extend(self.meter.end(&id, now, true, utc_offset_minutes()));
        }
        if !ended.is_empty() {
            self.spool.push(&ended).await?;
        }
        Ok(())
    }

    fn consider(&mut self, p: &ProcessInfo) {
        let original = procfs::file_name(&p.exe);
        let named = |r: &&MeteringRule| {
            r.spec.file_name.eq_ignore_ascii_case(&p.invoked_as)
                || r.spec.original_file_name.eq_ignore_ascii_case(&original)
        };
        // Cheap name check first; the package lookup runs only for candidates.
        if !self.rules().iter().any(|r| named(&r)) {
            return;
        }
        let file = self.identities.identify(&p.invoked_as, &p.exe);
        if !self.rules().iter().any(|r| r.spec.matches(&file)) {
            return;
        }
        let id = meter_data_id(
            &self.creds.agent_id,
            &self.clock.boot_id,
            p.pid,
            p.start_ticks,
        );
        let account = self
            .accounts
            .get(&p.uid)
            .cloned()
            .unwrap_or_else(|| p.uid.to_string());
        tracing::debug!(pid = p.pid, file = %file.file_name, "metering");
        self.meter.start(Instance {
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
        self.metered.insert(p.pid, id);
    }

    async fn report(&mut self) -> Result<()> {
        let records = self.meter.report(Utc::now(), utc_offset_minutes());
        if !records.is_empty() {
            self.spool.push(&records).await?;
        }
        Ok(())
    }

    /// Uploads spooled records until the spool is empty or the server fails.
    async fn drain(&mut self) -> Result<()> {
        while let Some((first, last, records)) = self.spool.peek(UPLOAD_BATCH).await? {
            let batch = UsageBatch {
                batch_id: format!("{}-{first}-{last}", self.creds.agent_id),
                device_id: Some(self.creds.device_id),
                records,
                dropped: 0,
            };
            self.api.upload(&self.creds, &batch).await?;
            self.spool.ack(first, last).await?;
        }
        Ok(())
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
    let spool = Spool::open(&config.state_dir.join("spool.db")).await?;
    let mut agent = Agent {
        api,
        creds,
        spool,
        clock: Clock::read()?,
        accounts: procfs::accounts(),
        identities: Identities::default(),
        policy: None,
        etag: None,
        meter: Meter::default(),
        seen: HashMap::new(),
        metered: HashMap::new(),
        config,
    };
    agent.refresh_policy().await;
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
        watcher = "proc polling",
        poll_ms = agent.config.poll_interval.as_millis() as u64,
        report_secs = report_every.as_secs_f64(),
        "agent started"
    );
    let mut poll = tokio::time::interval(agent.config.poll_interval);
    let mut report =
        tokio::time::interval_at(tokio::time::Instant::now() + report_every, report_every);
    let mut housekeeping = tokio::time::interval(agent.config.policy_interval);
    let mut next_upload = tokio::time::Instant::now();
    let mut failures = 0u32;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = poll.tick() => agent.poll().await?,
            _ = report.tick() => agent.report().await?,
            _ = housekeeping.tick() => {
                agent.refresh_policy().await;
                if let Err(e) = agent.api.heartbeat(&agent.creds).await {
                    tracing::debug!(error = %e, "heartbeat failed");
                }
            }
            _ = tokio::time::sleep_until(next_upload) => {
                match agent.drain().await {
                    Ok(()) => {
                        failures = 0;
                        next_upload = tokio::time::Instant::now() + Duration::from_secs(1);
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
