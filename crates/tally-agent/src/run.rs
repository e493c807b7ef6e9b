//! The run loop: wires the pipeline together and drives the meter. The watcher runs on its own
//! thread; the policy refresh, the inventory and the uploader are tasks of their own, so the
//! loop here only ever waits for process events, its own timers and a new policy — never for
//! the server.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::api::Api;
use crate::config::AgentConfig;
use crate::enrolment::{self, Revocation};
use crate::meter::MeterStage;
use crate::policy::PolicyCache;
use crate::procfs::Clock;
use crate::spool::Spool;
use crate::uploader::{self, Uploader};
use crate::watcher;

/// Background tasks, stopped when the run ends however it ends (`tally up` runs the agent
/// inside a longer-lived process).
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    create_state_dir(&config.state_dir).with_context(|| {
        format!(
            "cannot create the state directory {}",
            config.state_dir.display()
        )
    })?;
    let api = Api::new(&config.server, config.ca_file.as_deref())?;
    let creds = enrolment::credentials(&api, &config).await?;
    let revocation = Revocation::new(&config);
    let spool_file = config.state_dir.join("spool.db");
    let spool = Spool::open_or_set_aside(&spool_file, config.spool_max_records).await?;
    let clock = Clock::read()?;
    let mut meter = MeterStage::new(creds.agent_id.clone(), spool.clone(), clock.clone());
    meter.recover().await?;
    let mut policy = PolicyCache::new(
        api.clone(),
        creds.clone(),
        revocation.clone(),
        &config.state_dir,
    );
    policy.refresh().await;
    let first_policy = policy.policy().cloned();
    meter.set_rules(first_policy.as_ref().map_or(&[], |p| p.rules.as_slice()));
    let watcher = watcher::open(
        config.watcher,
        clock,
        meter.interest(),
        config.poll_interval,
    )?;
    let watcher_name = watcher.name();
    let (events_tx, mut events) = mpsc::channel(1024);
    std::thread::Builder::new()
        .name("tally-watcher".into())
        .spawn(move || watcher.run(events_tx))
        .context("cannot start the process watcher thread")?;
    let report_every = config
        .report_interval
        .or_else(|| {
            first_policy
                .as_ref()
                .map(|p| Duration::from_secs(p.report_interval_secs))
        })
        .unwrap_or(Duration::from_secs(900));
    tracing::info!(
        watcher = watcher_name,
        poll_ms = config.poll_interval.as_millis() as u64,
        report_secs = report_every.as_secs_f64(),
        "agent started"
    );
    let (publish, mut policies) = watch::channel(first_policy);
    let (stop, stopping) = watch::channel(false);
    let spooled = spool.clone();
    let uploader = Uploader::new(
        api.clone(),
        creds.clone(),
        spool,
        revocation.clone(),
        config.upload_interval.unwrap_or(report_every),
    );
    let inventory = uploader::send_inventory(
        api,
        creds,
        revocation,
        config.inventory_check,
        policies.clone(),
    );
    // The uploader last: it is the one task awaited at the end.
    let mut tasks = Tasks(vec![
        tokio::spawn(policy.keep_fresh(config.policy_interval, publish, spooled)),
        tokio::spawn(inventory),
        tokio::spawn(uploader.run(stopping)),
    ]);
    let mut report =
        tokio::time::interval_at(tokio::time::Instant::now() + report_every, report_every);
    let mut checkpoint = tokio::time::interval(config.checkpoint_interval);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            batch = events.recv() => match batch {
                Some(batch) => meter.on_events(batch).await?,
                None => anyhow::bail!("the process watcher stopped; restart the agent"),
            },
            _ = report.tick() => meter.report().await?,
            _ = checkpoint.tick() => meter.flush().await?,
            Ok(()) = policies.changed() => {
                let policy = policies.borrow_and_update().clone();
                if meter.set_rules(policy.as_ref().map_or(&[], |p| p.rules.as_slice())) {
                    meter.rescan().await?;
                }
            }
        }
    }
    // Report instances still running up to now, so nothing metered so far is lost; the
    // uploader then tries once more to send it.
    meter.report().await?;
    let _ = stop.send(true);
    if let Some(upload) = tasks.0.last_mut() {
        let _ = upload.await;
    }
    tracing::info!("agent stopped");
    Ok(())
}

/// `tally up` spawns the agent on its runtime, so the run's future must stay `Send`; this
/// says so where the agent is built (a `raw_sql` on a transaction once made it unprovable).
#[cfg(test)]
#[allow(dead_code)]
fn run_is_send(config: AgentConfig) {
    fn is_send<T: Send>(_: &T) {}
    is_send(&run(config, std::future::pending()));
}

/// Creates the state directory owner-only (0700 whatever the umask: it holds the agent's
/// credentials and spool); one that exists keeps the mode its administrator gave it.
fn create_state_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}
