//! How the agent runs: the server, the state directory and the cadence of each stage.

use std::path::PathBuf;
use std::time::Duration;

use crate::watcher::WatcherKind;

/// How often the policy is re-read by default: hourly, as Configuration Manager's clients
/// poll for policy. A million agents then ask about 280 times a second, nearly all answered
/// `304 Not Modified`; a rule change reaches every agent within about an hour.
pub const DEFAULT_POLICY_SECS: u64 = 3600;

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
    /// How often the policy is re-read (cheap: an unchanged policy is a 304), jittered.
    pub policy_interval: Duration,
    pub ca_file: Option<PathBuf>,
    pub watcher: WatcherKind,
    /// Most records the spool holds while the server is unreachable.
    pub spool_max_records: u64,
    /// How often metering state and finished records are made durable, with a heartbeat (the
    /// bound used to close instances that ended while the agent was not running).
    pub checkpoint_interval: Duration,
    /// How long records wait in the spool before an upload, jittered; longer means fewer,
    /// larger uploads. `None`: the reporting cycle, so an agent sends one upload per cycle.
    pub upload_interval: Option<Duration>,
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
            policy_interval: Duration::from_secs(DEFAULT_POLICY_SECS),
            ca_file: None,
            watcher: WatcherKind::Auto,
            spool_max_records: 100_000,
            checkpoint_interval: Duration::from_secs(1),
            upload_interval: None,
            inventory_check: Duration::from_secs(3600),
        }
    }
}
