//! The agent's identity: enrolment once with a token, the credentials kept in the state
//! directory (`agent.json`, mode 0600), and what happens when the server stops accepting them.
//!
//! A revoked agent is told so by a 401 on any call. It then stops calling the server, keeps
//! metering into its spool, and leaves a `revoked` file next to its credentials, so that the
//! next start with a new enrolment token enrols again instead of reusing the dead credentials.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use tally_core::wire::v1::EnrollRequest;

use crate::api::{Api, ApiError, Credentials};
use crate::config::AgentConfig;

const CREDENTIALS: &str = "agent.json";
/// Present while the server refuses the stored credentials; holds its message.
const REVOKED: &str = "revoked";

/// This machine's host name, as an agent enrols it and the server finds its own device by.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Loads the stored credentials, or enrols with the token and stores them. Credentials the
/// server refused are replaced by a new enrolment when a token is given; without one, or
/// when that enrolment fails, the old ones are tried again (metering goes on either way).
pub async fn credentials(api: &Api, config: &AgentConfig) -> Result<Credentials> {
    let path = config.state_dir.join(CREDENTIALS);
    let Ok(text) = std::fs::read_to_string(&path) else {
        let token = config.enroll_token.as_deref().context(
            "this agent is not enrolled yet; set enroll_token_file in its settings or pass --enroll-token-file FILE (tally enrollment create prints a token)",
        )?;
        return enroll(api, &config.state_dir, token).await;
    };
    let stored: Credentials = serde_json::from_str(&text)
        .with_context(|| format!("{} is damaged; delete it to enrol again", path.display()))?;
    let revoked = config.state_dir.join(REVOKED);
    if !revoked.exists() {
        return Ok(stored);
    }
    let Some(token) = config.enroll_token.as_deref() else {
        tracing::warn!("the server refused this agent's credentials before; trying them again (put a new token in the enroll_token_file to enrol again)");
        return Ok(stored);
    };
    match enroll(api, &config.state_dir, token).await {
        Ok(creds) => {
            std::fs::remove_file(&revoked)
                .with_context(|| format!("cannot remove {}", revoked.display()))?;
            Ok(creds)
        }
        Err(e) => {
            tracing::error!(error = %e, "enrolling again failed; metering goes on with the old credentials");
            Ok(stored)
        }
    }
}

/// Enrols with `token` and stores the credentials (mode 0600).
async fn enroll(api: &Api, state_dir: &Path, token: &str) -> Result<Credentials> {
    let request = EnrollRequest {
        enrollment_token: token.to_string(),
        host_name: host_name(),
        fqdn: None,
        os: std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            }),
        // What finds this machine's device again when it enrols anew (docs/agent.md).
        serial: crate::inventory::dmi_serial(),
        machine_id: crate::inventory::machine_id(),
    };
    let enrolled = api.enroll(&request).await.context("cannot enrol")?;
    let creds = Credentials {
        agent_id: enrolled.agent_id,
        agent_secret: enrolled.agent_secret,
        device_id: enrolled.device_id,
    };
    write_private(&state_dir.join(CREDENTIALS), &serde_json::to_vec(&creds)?)?;
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

/// Whether the server still accepts this agent: shared by every stage that calls it, so the
/// first refusal stops them all.
#[derive(Clone)]
pub struct Revocation {
    refused: Arc<AtomicBool>,
    server: String,
    state_dir: PathBuf,
}

impl Revocation {
    pub fn new(config: &AgentConfig) -> Self {
        Self {
            refused: Arc::default(),
            server: config.server.clone(),
            state_dir: config.state_dir.clone(),
        }
    }

    /// Whether the server refused the credentials: no more calls to it.
    pub fn is_revoked(&self) -> bool {
        self.refused.load(Ordering::SeqCst)
    }

    /// Passes `result` on, noting a refusal of the credentials first.
    pub fn check<T>(&self, result: Result<T, ApiError>) -> Result<T, ApiError> {
        if let Err(ApiError::Unauthorized { message, .. }) = &result {
            self.refused(message);
        }
        result
    }

    /// Records that the server refused the credentials: said once, as an error with the
    /// command that fixes it, and remembered for the next start.
    pub fn refused(&self, message: &str) {
        if self.refused.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(e) = std::fs::write(self.state_dir.join(REVOKED), message) {
            tracing::warn!(error = %e, "cannot note the revocation in the state directory");
        }
        tracing::error!(
            server = %message,
            "the server refused this agent's credentials (revoked or unknown): uploads stop; \
             usage is still metered into the spool and nothing is lost. To fix it, create an \
             enrolment token on the server (tally enrollment create) and restart the agent \
             with it: tally agent --server {} --enroll-token TOKEN --state-dir {}",
            self.server,
            self.state_dir.display()
        );
    }
}
