//! The policy cache: the rules and cadences the server sends, re-read on a timer by a task of
//! its own (an unchanged policy is a cheap 304) and kept in `policy.json`, so an agent started
//! while the server is unreachable meters with the last policy it had. The meter hears of a
//! new policy through a watch channel and never waits for the server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tally_core::wire::v1::Policy;
use tokio::sync::watch;

use crate::api::{Api, Credentials};
use crate::enrolment::Revocation;

/// The policy as last read, with its cache file and tag.
pub struct PolicyCache {
    api: Api,
    creds: Credentials,
    revocation: Revocation,
    path: PathBuf,
    etag: Option<String>,
    policy: Option<Policy>,
}

impl PolicyCache {
    pub fn new(api: Api, creds: Credentials, revocation: Revocation, state_dir: &Path) -> Self {
        Self {
            api,
            creds,
            revocation,
            path: state_dir.join("policy.json"),
            etag: None,
            policy: None,
        }
    }

    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }

    /// Re-reads the policy; returns whether it changed. Without one yet and no answer from the
    /// server, the cached file stands in.
    pub async fn refresh(&mut self) -> bool {
        let answer = self
            .revocation
            .check(self.api.policy(&self.creds, self.etag.as_deref()).await);
        match answer {
            Ok(Some((policy, etag))) => {
                tracing::info!(rules = policy.rules.len(), "policy updated");
                if let Err(e) =
                    std::fs::write(&self.path, serde_json::to_vec(&policy).unwrap_or_default())
                {
                    tracing::warn!(error = %e, "cannot cache the policy");
                }
                self.policy = Some(policy);
                self.etag = Some(etag);
                true
            }
            Ok(None) => false,
            Err(e) if self.policy.is_none() => {
                tracing::warn!(error = %e, "server unreachable; using the cached policy");
                self.policy = std::fs::read(&self.path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                self.policy.is_some()
            }
            Err(e) => {
                tracing::warn!(error = %e, "policy refresh failed; keeping the current one");
                false
            }
        }
    }

    /// Re-reads the policy about every `every`, publishing it when it changed, and sends a
    /// heartbeat about every heartbeat interval the policy asks for (at least as often as the
    /// policy is read). Each wait is jittered, so agents started together (a fleet rebooted on
    /// a Monday morning) spread out instead of calling the server in step. Stops calling the
    /// server once it refused this agent.
    pub async fn keep_fresh(
        mut self,
        every: Duration,
        publish: watch::Sender<Option<Policy>>,
        spool: crate::spool::Spool,
    ) {
        use tokio::time::{sleep_until, Instant};
        let now = Instant::now();
        // The first heartbeat anywhere in its interval, so agents started together spread.
        let first_beat = self.heartbeat_every(every).mul_f64(rand::random::<f64>());
        let (mut next_policy, mut next_beat) = (now + jittered(every), now + first_beat);
        loop {
            sleep_until(next_policy.min(next_beat)).await;
            if self.revocation.is_revoked() {
                next_policy = Instant::now() + jittered(every);
                continue;
            }
            if Instant::now() >= next_policy {
                if self.refresh().await {
                    publish.send_replace(self.policy.clone());
                }
                next_policy = Instant::now() + jittered(every);
            }
            if Instant::now() >= next_beat {
                let spooled = spool.len().await.ok().and_then(|n| u64::try_from(n).ok());
                let beat = self.api.heartbeat(&self.creds, spooled).await;
                if let Err(e) = self.revocation.check(beat) {
                    tracing::debug!(error = %e, "heartbeat failed");
                }
                next_beat = Instant::now() + jittered(self.heartbeat_every(every));
            }
        }
    }

    /// The policy's heartbeat interval, or `policy_every` when that is shorter.
    fn heartbeat_every(&self, policy_every: Duration) -> Duration {
        let asked = self
            .policy
            .as_ref()
            .map(|p| Duration::from_secs(p.heartbeat_interval_secs.max(1)));
        asked.map_or(policy_every, |a| a.min(policy_every))
    }
}

/// `every`, give or take a quarter at random.
pub(crate) fn jittered(every: Duration) -> Duration {
    every.mul_f64(0.75 + rand::random::<f64>() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A million agents started together must not wake together: each wait is drawn evenly
    /// from three quarters to five quarters of the interval.
    #[test]
    fn waits_spread_evenly_over_a_quarter_either_side() {
        let every = Duration::from_secs(3600);
        let mut buckets = [0u32; 10];
        let n = 10_000;
        for _ in 0..n {
            let wait = jittered(every).as_secs_f64() / every.as_secs_f64();
            assert!((0.75..=1.25).contains(&wait), "{wait}");
            buckets[(((wait - 0.75) * 20.0) as usize).min(9)] += 1;
        }
        // Each tenth of the range gets a tenth of the waits (± 3 %: 10 standard deviations).
        for (i, &count) in buckets.iter().enumerate() {
            assert!((700..=1300).contains(&count), "bucket {i}: {count} of {n}");
        }
    }
}
