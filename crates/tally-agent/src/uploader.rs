//! The sink to the server: a task of its own that drains the spool, deleting only what the
//! server acknowledged. It wakes when the meter has written records (and about one upload
//! interval — the reporting cycle unless `--upload-secs` says otherwise, jittered — after its
//! last upload), or when its backoff after a failure ends; a slow or dead server holds up only
//! this task, never the reading of process events or checkpoints.
//!
//! Each failure is handled by its kind ([`ApiError`]): a batch the server refuses is halved
//! until the record at fault stands alone, which goes to the spool's `rejected` table; an
//! agent the server no longer accepts stops uploading (its records stay in the spool); any
//! other failure is retried after an exponential backoff with jitter.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tally_core::wire::v1::{Policy, UsageBatch};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::{Api, ApiError, Credentials};
use crate::enrolment::Revocation;
use crate::inventory;
use crate::spool::{Spool, SpoolError};

/// Records per upload.
const UPLOAD_BATCH: i64 = 1000;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why a drain of the spool stopped early.
#[derive(Debug, thiserror::Error)]
enum DrainError {
    #[error(transparent)]
    Server(#[from] ApiError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

pub struct Uploader {
    api: Api,
    creds: Credentials,
    spool: Spool,
    revocation: Revocation,
    /// The least time between uploads.
    interval: Duration,
    /// Records per upload; halved while the server refuses a batch, to find the bad record.
    batch_limit: i64,
}

impl Uploader {
    pub fn new(
        api: Api,
        creds: Credentials,
        spool: Spool,
        revocation: Revocation,
        interval: Duration,
    ) -> Self {
        Self {
            api,
            creds,
            spool,
            revocation,
            interval,
            batch_limit: UPLOAD_BATCH,
        }
    }

    /// Uploads until `stop` turns true, then tries once more to send what is left.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        // The first upload at a random point of the first interval: agents started together
        // spread over it.
        let mut next = Instant::now() + self.interval.mul_f64(rand::random::<f64>());
        let mut failures = 0u32;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep_until(next) => {}
            }
            if self.revocation.is_revoked() {
                // Metering goes on into the spool; nothing more is sent.
                let _ = stop.changed().await;
                return;
            }
            if !self.has_work().await {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = self.spool.written() => {}
                }
            }
            let result = self.drain().await;
            match result {
                Ok(()) => {
                    failures = 0;
                    next = Instant::now() + crate::policy::jittered(self.interval);
                }
                Err(DrainError::Server(ApiError::Unauthorized { message, .. })) => {
                    self.revocation.refused(&message);
                }
                Err(DrainError::Server(ApiError::Throttled { retry_after, .. })) => {
                    let spooled = self.spool.len().await.unwrap_or(-1);
                    tracing::info!(retry_in_secs = retry_after.as_secs(), spooled, "the server is limiting this agent's request rate; uploading again when it asked");
                    next = Instant::now() + retry_after;
                }
                Err(e) => {
                    failures += 1;
                    let wait = backoff(failures);
                    let spooled = self.spool.len().await.unwrap_or(-1);
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, spooled, "upload failed; records stay in the spool");
                    next = Instant::now() + wait;
                }
            }
        }
        if self.revocation.is_revoked() {
            return;
        }
        if let Err(e) = self.drain().await {
            tracing::warn!(error = %e, "stopping with records in the spool; they are sent at the next start");
        }
    }

    /// Whether there is anything to send: records, or a count of dropped ones.
    async fn has_work(&self) -> bool {
        let records = self.spool.len().await.unwrap_or(1);
        records > 0 || self.spool.dropped().await.unwrap_or(1) > 0
    }

    /// Uploads spooled records until the spool is empty or the server fails. A batch the
    /// server refuses is halved until the record it objects to stands alone; that one is moved
    /// aside and reported as dropped, so one bad record never blocks the rest.
    async fn drain(&mut self) -> Result<(), DrainError> {
        loop {
            let sent = self.send_one().await;
            self.spool.sent();
            if !sent? {
                return Ok(());
            }
        }
    }

    /// Sends the oldest batch; returns whether there may be more to send.
    async fn send_one(&mut self) -> Result<bool, DrainError> {
        // The server takes at most this many per report; the rest stays counted in the spool
        // (the acknowledgement subtracts what was reported) and goes with the next upload.
        let dropped = self
            .spool
            .dropped()
            .await?
            .min(tally_core::limits::MAX_DROPPED_PER_REPORT);
        let batch = self.spool.peek(self.batch_limit).await?;
        let (first, last, records) = match batch {
            Some(b) => (b.first, b.last, b.records),
            None if dropped > 0 => (0, -1, Vec::new()),
            None => return Ok(false),
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
                Ok(size > 0)
            }
            Err(e @ ApiError::Refused { .. }) if size <= 1 && first <= last => {
                self.spool.reject(first, &e.to_string()).await?;
                Ok(true)
            }
            Err(e @ ApiError::Refused { .. }) if size > 1 => {
                self.batch_limit = (size as i64 / 2).max(1);
                tracing::warn!(error = %e, next_batch = self.batch_limit, "batch refused; retrying smaller batches to find the record at fault");
                Ok(true)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Every `every`: reads the inventory and sends it when it changed or a day (the policy's
/// interval) has passed since the server last took it. Stops once the server refused this
/// agent.
pub async fn send_inventory(
    api: Api,
    creds: Credentials,
    revocation: Revocation,
    every: Duration,
    policy: watch::Receiver<Option<Policy>>,
) {
    let mut tick = tokio::time::interval(every);
    // The hash and time of the last inventory the server took.
    let mut sent: Option<(String, DateTime<Utc>)> = None;
    loop {
        tick.tick().await;
        if revocation.is_revoked() {
            continue;
        }
        let inventory = tokio::task::spawn_blocking(inventory::collect)
            .await
            .expect("inventory collection does not panic");
        let daily = policy
            .borrow()
            .as_ref()
            .map_or(86_400, |p| p.inventory_interval_secs) as i64;
        let due = match &sent {
            Some((hash, at)) => {
                *hash != inventory.hash || Utc::now() - *at > chrono::Duration::seconds(daily)
            }
            None => true,
        };
        if !due {
            continue;
        }
        match revocation.check(api.inventory(&creds, &inventory).await) {
            Ok(()) => {
                tracing::info!(packages = inventory.software.len(), "inventory sent");
                sent = Some((inventory.hash, Utc::now()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "inventory upload failed; it is sent again at the next check")
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

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) < backoff(5));
        assert!(backoff(30) <= super::MAX_BACKOFF.mul_f64(1.25));
    }
}
