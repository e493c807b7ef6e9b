//! `tally agent`'s settings (flags, `TALLY_*` variables, then `/etc/tally/agent.toml`, then
//! defaults) and `tally agent install`, which sets a machine up in one command. The enrolment
//! token is read from a file, so it is never on a command line, in `ps` or a shell history.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use tally_agent::watcher::WatcherKind;

/// Where the packaged unit and `tally agent install` look for the agent's settings.
pub const DEFAULT_CONFIG: &str = "/etc/tally/agent.toml";
/// Where `tally agent install` keeps its copy of the enrolment token (mode 0600).
const TOKEN_FILE: &str = "/etc/tally/enroll-token";
const DEFAULT_STATE_DIR: &str = "/var/lib/tally-agent";
/// The agent's unit; `install` writes it unless a package installed it already.
const UNIT: &str = include_str!("../../../contrib/systemd/tally-agent.service");
const UNIT_NAME: &str = "tally-agent.service";
/// The longest any interval may be: a day.
const MAX_SECS: u64 = 86_400;

/// `tally agent`: run the agent, or `tally agent install` to set this machine up.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentCommand {
    #[command(subcommand)]
    pub cmd: Option<AgentCmd>,
    #[command(flatten)]
    pub run: AgentArgs,
}

#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// Write /etc/tally/agent.toml, keep the enrolment token in /etc/tally/enroll-token
    /// (0600), install the systemd unit and enable and start it: one command per machine.
    Install(InstallArgs),
}

/// The agent's settings. Precedence: flag, then `TALLY_*` variable, then the `--config` file,
/// then the default shown.
#[derive(Args, Debug, Clone, Default)]
pub struct AgentArgs {
    /// TOML settings file (keys as the long flags, with underscores).
    #[arg(long, env = "TALLY_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// The site server's URL.
    #[arg(long, env = "TALLY_SERVER")]
    pub server: Option<String>,
    /// File holding the enrolment token (needed only until the agent has enrolled).
    #[arg(long, env = "TALLY_ENROLL_TOKEN_FILE")]
    pub enroll_token_file: Option<PathBuf>,
    /// Enrolment token itself. Visible in `ps` to every local user: prefer --enroll-token-file.
    #[arg(long, env = "TALLY_ENROLL_TOKEN", hide_env_values = true)]
    pub enroll_token: Option<String>,
    /// Where credentials, the policy cache and the spool live [default: /var/lib/tally-agent].
    #[arg(long, env = "TALLY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Process watcher: netlink (the kernel reports every start and exit; needs root in the
    /// host's network namespace), poll (read /proc every --poll-ms), or auto (netlink when
    /// it can be opened, else poll) [default: auto].
    #[arg(long, env = "TALLY_AGENT_WATCHER")]
    pub watcher: Option<WatcherKind>,
    /// How often /proc is read by the polling watcher, in milliseconds [default: 1000].
    #[arg(long)]
    pub poll_ms: Option<u64>,
    /// Most usage records kept while the server is unreachable; beyond it records of one run
    /// are merged, then the oldest dropped (and the count reported) [default: 100000].
    #[arg(long)]
    pub spool_max_records: Option<u64>,
    /// How often finished records and the metering state are written to disk with a
    /// heartbeat, in seconds; after a crash, programs that ended meanwhile are closed at the
    /// last heartbeat [default: 1].
    #[arg(long)]
    pub checkpoint_secs: Option<u64>,
    /// Seconds between uploads of spooled records, jittered (fewer, larger uploads cost less)
    /// [default: the reporting cycle].
    #[arg(long)]
    pub upload_secs: Option<u64>,
    /// How often the inventory is read for changes, in seconds (it is sent when it changed,
    /// and daily) [default: 3600].
    #[arg(long)]
    pub inventory_check_secs: Option<u64>,
    /// Reporting cycle in seconds, overriding the server's policy.
    #[arg(long)]
    pub report_secs: Option<u64>,
    /// How often the policy is re-read, in seconds, jittered; heartbeats go at least as often
    /// [default: 3600].
    #[arg(long)]
    pub policy_secs: Option<u64>,
    /// PEM CA to trust for the server's certificate besides the system roots.
    #[arg(long, env = "TALLY_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

/// `/etc/tally/agent.toml`: the same settings as the flags. Unknown keys are refused, so a
/// misspelt setting is an error at start rather than silently the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    pub server: Option<String>,
    pub enroll_token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub watcher: Option<String>,
    pub poll_ms: Option<u64>,
    pub spool_max_records: Option<u64>,
    pub checkpoint_secs: Option<u64>,
    pub upload_secs: Option<u64>,
    pub inventory_check_secs: Option<u64>,
    pub report_secs: Option<u64>,
    pub policy_secs: Option<u64>,
}

impl AgentFile {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the agent's settings {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
    }
}

/// Runs the agent with its settings resolved.
pub async fn run(args: AgentArgs) -> Result<()> {
    crate::serve::init_logging(tally_server::config::LogFormat::Text);
    let config = resolve(args)?;
    tally_agent::run(config, tally_server::shutdown_signal()).await
}

/// Flags over the file over the defaults; each interval bounded to a day.
pub fn resolve(args: AgentArgs) -> Result<tally_agent::AgentConfig> {
    let file = match &args.config {
        Some(path) => AgentFile::load(path)?,
        None => AgentFile::default(),
    };
    let server = args.server.or(file.server).context(
        "no server: pass --server URL or set server in the agent's settings (--config FILE)",
    )?;
    check_server_url(&server)?;
    let watcher = match (args.watcher, &file.watcher) {
        (Some(w), _) => w,
        (None, Some(w)) => w.parse().map_err(anyhow::Error::msg)?,
        (None, None) => WatcherKind::Auto,
    };
    let token_file = args.enroll_token_file.or(file.enroll_token_file);
    let enroll_token = match (args.enroll_token, token_file) {
        (Some(token), _) => Some(token),
        (None, Some(path)) => read_token(&path)?,
        (None, None) => None,
    };
    let secs = |name: &str, flag: Option<u64>, file: Option<u64>, default: u64| {
        bounded(name, flag.or(file).unwrap_or(default), 1..=MAX_SECS).map(Duration::from_secs)
    };
    let poll_ms = args.poll_ms.or(file.poll_ms).unwrap_or(1000);
    let report = args.report_secs.or(file.report_secs);
    Ok(tally_agent::AgentConfig {
        enroll_token,
        poll_interval: Duration::from_millis(bounded("poll_ms", poll_ms, 10..=60_000)?),
        report_interval: report
            .map(|s| bounded("report_secs", s, 1..=MAX_SECS).map(Duration::from_secs))
            .transpose()?,
        policy_interval: secs(
            "policy_secs",
            args.policy_secs,
            file.policy_secs,
            tally_agent::config::DEFAULT_POLICY_SECS,
        )?,
        ca_file: args.ca_file.or(file.ca_file),
        watcher,
        spool_max_records: bounded(
            "spool_max_records",
            args.spool_max_records
                .or(file.spool_max_records)
                .unwrap_or(100_000),
            1..=100_000_000,
        )?,
        checkpoint_interval: secs(
            "checkpoint_secs",
            args.checkpoint_secs,
            file.checkpoint_secs,
            1,
        )?,
        inventory_check: secs(
            "inventory_check_secs",
            args.inventory_check_secs,
            file.inventory_check_secs,
            3600,
        )?,
        upload_interval: args
            .upload_secs
            .or(file.upload_secs)
            .map(|s| bounded("upload_secs", s, 0..=MAX_SECS).map(Duration::from_secs))
            .transpose()?,
        ..tally_agent::AgentConfig::new(
            server,
            args.state_dir
                .or(file.state_dir)
                .unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
        )
    })
}

fn bounded(name: &str, value: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64> {
    if !range.contains(&value) {
        bail!(
            "{name} = {value}: must be between {} and {}",
            range.start(),
            range.end()
        );
    }
    Ok(value)
}

fn check_server_url(url: &str) -> Result<()> {
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048 {
        bail!("server {url:?}: expected an http:// or https:// URL");
    }
    Ok(())
}

/// The token in `path`; `None` when the file is gone (an enrolled agent needs no token, and
/// an operator may delete it once the agent enrolled).
fn read_token(path: &Path) -> Result<Option<String>> {
    if !path.exists() {
        return Ok(None);
    }
    crate::serve::read_secret(path).map(Some)
}

/// `tally agent install`.
#[derive(Args, Debug)]
pub struct InstallArgs {
    /// The site server's URL.
    #[arg(long)]
    pub server: String,
    /// File holding the enrolment token (`tally enrollment create` prints one); copied to
    /// /etc/tally/enroll-token, readable by root only.
    #[arg(long)]
    pub enroll_token_file: PathBuf,
    /// PEM CA to trust for the server's certificate besides the system roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Install into this root instead of / (an image being built, a test): files are written
    /// under it and systemctl is not run.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
}

/// Writes the settings, the token and (unless a package did) the unit, then enables and starts
/// the unit. Running it again rewrites the settings and keeps the agent's state, so a machine
/// re-imaged with the same machine-id keeps its device.
pub fn install(args: InstallArgs) -> Result<()> {
    check_server_url(&args.server)?;
    let token = read_token(&args.enroll_token_file)?.with_context(|| {
        format!(
            "{} does not exist: put the enrolment token in it (tally enrollment create)",
            args.enroll_token_file.display()
        )
    })?;
    let ca_file = args.ca_file.map(std::path::absolute).transpose()?;
    if let Some(ca) = ca_file
        .as_ref()
        .filter(|ca| !under(&args.root, &ca.display().to_string()).exists())
    {
        bail!(
            "the CA file {} does not exist (in --root {})",
            ca.display(),
            args.root.display()
        );
    }
    let root = &args.root;
    let settings = AgentFile {
        server: Some(args.server),
        enroll_token_file: Some(TOKEN_FILE.into()),
        ca_file,
        state_dir: Some(DEFAULT_STATE_DIR.into()),
        ..AgentFile::default()
    };
    let config = under(root, DEFAULT_CONFIG);
    crate::serve::write_private(&under(root, TOKEN_FILE), &token)?;
    write_mode(&config, &toml::to_string(&settings)?, 0o644)?;
    println!("wrote {} and {}", config.display(), TOKEN_FILE);
    if let Some(unit) = unit_to_write(root)? {
        let exe = std::env::current_exe()?;
        let text = UNIT.replace("/usr/bin/tally", &exe.display().to_string());
        write_mode(&unit, &text, 0o644)?;
        println!("wrote {}", unit.display());
    }
    if root != Path::new("/") {
        println!(
            "skipped systemctl: --root is {}, not /; in that system run systemctl enable --now {UNIT_NAME}",
            root.display()
        );
        return Ok(());
    }
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", UNIT_NAME])?;
    // Restart rather than start: a unit already running reads the new settings.
    systemctl(&["restart", UNIT_NAME])?;
    println!("{UNIT_NAME} enabled and started; journalctl -u {UNIT_NAME} shows its log");
    Ok(())
}

/// `path` (absolute, as on the target system) under `root`.
fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Where to write the unit: nowhere when a package installed one, else the administrator's
/// unit directory.
fn unit_to_write(root: &Path) -> Result<Option<PathBuf>> {
    for dir in ["lib/systemd/system", "usr/lib/systemd/system"] {
        if root.join(dir).join(UNIT_NAME).exists() {
            return Ok(None);
        }
    }
    Ok(Some(under(root, "/etc/systemd/system").join(UNIT_NAME)))
}

fn write_mode(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn systemctl(args: &[&str]) -> Result<()> {
    let status = std::process::Command::new("systemctl")
        .args(args)
        .status()
        .context("cannot run systemctl: is this a systemd machine?")?;
    if !status.success() {
        bail!("systemctl {} failed ({status})", args.join(" "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The large-estate cadence is what an agent gets when nothing says otherwise: the policy
    /// hourly, uploads once per reporting cycle (no interval of its own), and a flag still wins.
    #[test]
    fn the_defaults_are_the_large_estate_cadence() {
        let args = AgentArgs {
            server: Some("https://tally.example.org".into()),
            ..AgentArgs::default()
        };
        let config = resolve(args.clone()).unwrap();
        assert_eq!(config.policy_interval, Duration::from_secs(3600));
        assert_eq!(config.upload_interval, None, "the reporting cycle");
        assert_eq!(config.report_interval, None, "the policy's");
        let set = AgentArgs {
            upload_secs: Some(30),
            policy_secs: Some(120),
            ..args
        };
        let config = resolve(set).unwrap();
        assert_eq!(config.upload_interval, Some(Duration::from_secs(30)));
        assert_eq!(config.policy_interval, Duration::from_secs(120));
    }
}
