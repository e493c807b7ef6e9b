//! Site maintenance: the summarisation and ageing tasks of `tally_core::tasks`, run on their
//! schedules and on demand. Summaries are incremental from each task's `TimeSerial` watermark;
//! running a task twice changes nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Utc};
use tally_api::TaskChange;
use tally_core::autorules::AutoRuleSettings;
use tally_core::summary;
use tally_core::tasks::{Task, TaskState};
use tally_store::{Store, TaskPart};

use crate::audit::entry;
use crate::{summaries, Result, Service, ServiceError};

/// Runs `task` now and records its state; returns the state after the run. A task already
/// running (here, or on another replica) is not started again: [`ServiceError::Conflict`].
pub async fn run(service: &Service, task: Task) -> Result<TaskState> {
    run_audited(service, task, None).await
}

/// [`run`] on an operator's request: the task's state after the run is stored with the
/// `task.run` audit entry (as `actor`) in one transaction.
pub async fn run_as(service: &Service, task: Task, actor: &str) -> Result<TaskState> {
    run_audited(service, task, Some(actor)).await
}

async fn run_audited(service: &Service, task: Task, actor: Option<&str>) -> Result<TaskState> {
    let Some(lock) = service.store().lock_task(task.name()).await? else {
        return Err(ServiceError::Conflict(format!(
            "task {} is running already (on this server or another replica); \
             see tally tasks for when it last finished, and run it again after",
            task.name()
        )));
    };
    let done = run_locked(service, task, actor).await;
    lock.release().await?;
    done
}

async fn run_locked(service: &Service, task: Task, actor: Option<&str>) -> Result<TaskState> {
    let store = service.store();
    let rules = service.file_rules();
    let mut current = task_state(store, task).await?;
    let started = Instant::now();
    let outcome = match task {
        Task::SummarizeFileUsage | Task::SummarizeMonthlyUsage | Task::RecordUsageSessions => {
            summaries::summarize(task, store, rules, current.watermark).await
        }
        Task::DeleteAgedUsage => delete_aged_usage(service, &current).await,
        Task::DeleteAgedSummaries => delete_aged_summaries(store, &current).await,
        Task::WriteReports => {
            let keep = current.age_days.unwrap_or(90);
            crate::scheduled::write_scheduled(service, Utc::now(), keep)
                .await
                .map(|written| (written, current.watermark))
        }
        Task::SnapshotCompliance => snapshot_compliance(service)
            .await
            .map(|rows| (rows, current.watermark)),
        Task::SystemMetering => crate::metering::run(service, Utc::now())
            .await
            .map(|run| (run.files.len() as i64, current.watermark)),
        Task::GenerateAutoRules => {
            crate::autorules::generate(service, AutoRuleSettings::default(), "scheduler")
                .await
                .map(|created| (created.len() as i64, current.watermark))
        }
    };
    // The summary tasks moved their watermarks themselves, with their rows; re-read them. An
    // operator may have changed the task's settings (`tally tasks set`) while it ran: keep
    // theirs — the run writes only its outcome (`TaskPart::Outcome`), and the state it answers
    // carries the settings as stored now.
    let now = task_state(store, task).await?;
    if matches!(task, Task::SummarizeMonthlyUsage | Task::SummarizeFileUsage) {
        current.watermark = now.watermark;
    }
    (current.enabled, current.every_secs, current.age_days) =
        (now.enabled, now.every_secs, now.age_days);
    current.last_run_at = Some(Utc::now());
    current.last_duration_ms = Some(started.elapsed().as_millis() as i64);
    service
        .telemetry()
        .task_ran(task.name(), started.elapsed(), outcome.is_ok());
    match outcome {
        Ok((rows, watermark)) => {
            current.last_rows = Some(rows);
            current.watermark = watermark;
            current.last_error = None;
            tracing::info!(task = task.name(), rows, watermark, "maintenance task done");
        }
        Err(e) => {
            tracing::warn!(task = task.name(), error = %e, "maintenance task failed");
            current.last_error = Some(e.to_string());
        }
    }
    let audit = actor.map(|actor| {
        let target = format!("task:{}", task.name());
        entry(actor, "task.run", target, current.last_rows)
    });
    store
        .put_task(&current, TaskPart::Outcome, audit.as_ref())
        .await?;
    Ok(current)
}

async fn task_state(store: &dyn Store, task: Task) -> Result<TaskState> {
    Ok(store
        .tasks()
        .await?
        .into_iter()
        .find(|t| t.name == task.name())
        .unwrap_or_else(|| task.defaults()))
}

fn age_cutoff(task: &TaskState) -> DateTime<Utc> {
    let days = task
        .age_days
        .or(Task::parse(&task.name).and_then(|t| t.default_age_days()));
    Utc::now() - chrono::Duration::days(i64::from(days.unwrap_or(5)))
}

/// Deletes raw records older than the task's age that both summaries have taken in and, on a
/// site with a parent, that have gone up to it (ageing never deletes what is unsent).
async fn delete_aged_usage(service: &Service, task: &TaskState) -> Result<(i64, i64)> {
    let store = service.store();
    let tasks = store.tasks().await?;
    let watermark = |t: Task| {
        tasks
            .iter()
            .find(|s| s.name == t.name())
            .map_or(0, |s| s.watermark)
    };
    let summarised = Task::ALL
        .into_iter()
        .filter(|t| t.reads_raw_usage())
        .map(watermark)
        .min()
        .unwrap_or(0);
    let summarised = match crate::site_sync::ageing_limit(service).await? {
        Some(sent) => summarised.min(sent),
        None => summarised,
    };
    let cutoff = age_cutoff(task);
    let deleted = store.delete_aged_usage(cutoff, summarised).await?;
    // The watermark keeps the newest cut-off any run used (µs since 1970): raw records that
    // ended before it may be gone, whatever the age is set to later (`summaries::released_before`).
    Ok((
        deleted as i64,
        task.watermark.max(cutoff.timestamp_micros()),
    ))
}

async fn delete_aged_summaries(store: &dyn Store, task: &TaskState) -> Result<(i64, i64)> {
    let cutoff = age_cutoff(task);
    // Whole months only: a month is deleted once all of it is older than the age.
    let month = summary::month_of(cutoff.date_naive().with_day(1).expect("day one"));
    let deleted = store.delete_aged_summaries(cutoff, month).await?;
    Ok((deleted as i64, task.watermark))
}

/// Runs due tasks every `check`, until the process ends.
pub async fn schedule(service: Arc<Service>, check: Duration) {
    let mut ticks = tokio::time::interval(check);
    loop {
        ticks.tick().await;
        let tasks = match service.store().tasks().await {
            Ok(tasks) => tasks,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read maintenance tasks; retrying");
                continue;
            }
        };
        let now = Utc::now();
        for t in tasks.iter().filter(|t| t.due(now)) {
            let Some(task) = Task::parse(&t.name) else {
                continue;
            };
            match run_if_due(&service, task).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!(task = t.name, "running or run elsewhere; skipped this time");
                }
                Err(e) => {
                    tracing::warn!(task = t.name, error = %e, "maintenance task could not run")
                }
            }
        }
    }
}

/// A scheduled run: under the task's lock, and only if the task is still due then. Every
/// replica's scheduler may find a task due at once; the first takes the lock and runs it, the
/// others either find it locked or, taking the lock after it, find it run already, so each
/// task runs once per schedule across replicas sharing one database.
async fn run_if_due(service: &Service, task: Task) -> Result<bool> {
    let Some(lock) = service.store().lock_task(task.name()).await? else {
        return Ok(false);
    };
    let due = task_state(service.store(), task).await?.due(Utc::now());
    let done = match due {
        true => run_locked(service, task, None).await.map(|_| true),
        false => Ok(false),
    };
    lock.release().await?;
    done
}

/// Today's compliance position of every application, kept per day for trends.
async fn snapshot_compliance(service: &Service) -> Result<i64> {
    let (store, today) = (service.store(), Utc::now().date_naive());
    let positions = service.positions(today, None).await?;
    let rows = crate::compliance::snapshot_rows(today, &positions);
    store.put_snapshots(today, &rows).await?;
    Ok(rows.len() as i64)
}

/// Changes a task's schedule, age or switch, as `actor`; the new state is stored with its
/// `task.change` audit entry in one transaction. Returns the state as stored.
pub async fn change(
    service: &Service,
    task: Task,
    change: &TaskChange,
    actor: &str,
) -> Result<TaskState> {
    let mut current = task_state(service.store(), task).await?;
    if let Some(every) = change.every_secs {
        if every < 60 {
            return Err(ServiceError::Invalid(
                "every_secs: at least 60 (a minute)".into(),
            ));
        }
        current.every_secs = every;
    }
    if let Some(age) = change.age_days {
        current.age_days = Some(checked_age(task, age)?);
    }
    if let Some(enabled) = change.enabled {
        current.enabled = enabled;
    }
    let audit = entry(
        actor,
        "task.change",
        format!("task:{}", task.name()),
        change,
    );
    service
        .store()
        .put_task(&current, TaskPart::Settings, Some(&audit))
        .await?;
    Ok(current)
}

/// `age`, if the task keeps data for a number of days and `age` is in its range.
fn checked_age(task: Task, age: i32) -> Result<i32> {
    let name = task.name();
    match task.age_range() {
        Some(range) if range.contains(&age) => Ok(age),
        Some(range) => Err(ServiceError::Invalid(format!(
            "age_days: {name} keeps between {} and {} days",
            range.start(),
            range.end()
        ))),
        None => Err(ServiceError::Invalid(format!(
            "age_days: {name} deletes nothing, so it has no age"
        ))),
    }
}
