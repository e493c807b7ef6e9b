//! Site maintenance: the summarisation and ageing tasks of `tally_core::tasks`, run on their
//! schedules and on demand. Summaries are incremental from each task's `TimeSerial` watermark;
//! running a task twice changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Utc};
use tally_core::autorules::AutoRuleSettings;
use tally_core::summary::{self, FileUsageHour};
use tally_core::tasks::{Task, TaskState};
use tally_core::UsageRecord;
use tally_store::prelude::*;
use tally_store::Page;

use crate::{ApiError, AppState};

/// Raw records read per page while summarising.
const PAGE: i64 = 10_000;

/// Runs `task` now and records its state; returns the state after the run. A task already
/// running (here, or on another replica) is not started again: [`ApiError::Conflict`].
pub async fn run(state: &AppState, task: Task) -> Result<TaskState, ApiError> {
    let Some(lock) = state.store.lock_task(task.name()).await? else {
        return Err(ApiError::Conflict(format!(
            "task {} is running already (on this server or another replica); \
             see tally tasks for when it last finished, and run it again after",
            task.name()
        )));
    };
    let done = run_locked(state, task).await;
    lock.release().await?;
    done
}

async fn run_locked(state: &AppState, task: Task) -> Result<TaskState, ApiError> {
    let store = state.store.as_ref();
    let mut current = task_state(store, task).await?;
    let started = Instant::now();
    let outcome = match task {
        Task::SummarizeFileUsage => summarize_file_usage(store, current.watermark).await,
        Task::SummarizeMonthlyUsage => summarize_monthly(store, current.watermark).await,
        Task::RecordUsageSessions => record_sessions(store, current.watermark).await,
        Task::DeleteAgedUsage => delete_aged_usage(store, &current).await,
        Task::DeleteAgedSummaries => delete_aged_summaries(store, &current).await,
        Task::WriteReports => {
            let keep = current.age_days.unwrap_or(90);
            crate::reports_api::write_scheduled(state, Utc::now(), keep)
                .await
                .map(|written| (written, current.watermark))
        }
        Task::SnapshotCompliance => snapshot_compliance(store)
            .await
            .map(|rows| (rows, current.watermark)),
        Task::GenerateAutoRules => {
            crate::autorules::generate(state, AutoRuleSettings::default(), "scheduler")
                .await
                .map(|created| (created.len() as i64, current.watermark))
        }
    };
    // The monthly task moved its watermark itself, with its rows; re-read it.
    if task == Task::SummarizeMonthlyUsage {
        current.watermark = task_state(store, task).await?.watermark;
    }
    current.last_run_at = Some(Utc::now());
    current.last_duration_ms = Some(started.elapsed().as_millis() as i64);
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
    store.put_task(&current).await?;
    Ok(current)
}

async fn task_state(store: &dyn Store, task: Task) -> Result<TaskState, ApiError> {
    Ok(store
        .tasks()
        .await?
        .into_iter()
        .find(|t| t.name == task.name())
        .unwrap_or_else(|| task.defaults()))
}

/// Which rules meter each stored file (a file can match several rules).
async fn rules_of_files(store: &dyn Store) -> Result<HashMap<i64, Vec<i64>>, ApiError> {
    let rules = store.rules().await?;
    let mut map: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut page = Page {
        after: 0,
        limit: 1000,
    };
    loop {
        let files = store.files(page).await?;
        let Some(last) = files.last() else { break };
        page.after = last.id;
        for f in &files {
            let matching: Vec<i64> = rules
                .iter()
                .filter(|r| r.spec.matches(&f.info))
                .map(|r| r.id)
                .collect();
            if !matching.is_empty() {
                map.insert(f.id, matching);
            }
        }
    }
    Ok(map)
}

/// Reads every record with `watermark < time_serial <= top`, a page at a time.
async fn for_new_records(
    store: &dyn Store,
    (watermark, top): (i64, i64),
    mut each: impl FnMut(&[UsageRecord]),
) -> Result<(), ApiError> {
    let mut after = (watermark, 0);
    loop {
        let page = store.usage_by_serial((watermark, top), after, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = (last.time_serial, last.id);
        each(&page);
    }
}

/// Recomputes every (rule, hour) that new records touch, from all raw records of that hour,
/// a day at a time. Returns the rows written and the new watermark.
async fn summarize_file_usage(store: &dyn Store, watermark: i64) -> Result<(i64, i64), ApiError> {
    let top = store.max_time_serial().await?;
    if top <= watermark {
        return Ok((0, watermark));
    }
    let rules_of_file = rules_of_files(store).await?;
    let mut touched: BTreeSet<(DateTime<Utc>, i64)> = BTreeSet::new();
    for_new_records(store, (watermark, top), |page| {
        for r in page {
            for &rule in rules_of_file.get(&r.file_id).into_iter().flatten() {
                touched.extend(summary::hours_of(r).into_iter().map(|h| (h, rule)));
            }
        }
    })
    .await?;
    let mut by_day: BTreeMap<chrono::NaiveDate, Vec<(DateTime<Utc>, i64)>> = BTreeMap::new();
    for (hour, rule) in touched {
        by_day
            .entry(hour.date_naive())
            .or_default()
            .push((hour, rule));
    }
    let released_before = released_before(store).await?;
    let mut written = 0;
    for (day, keys) in by_day {
        let from = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let records = store
            .usage_overlapping(from, from + chrono::Duration::days(1))
            .await?;
        let mut rows = hours_of_day(&keys, &records, &rules_of_file);
        if from < released_before {
            rows = merge_with_released(store, rows, released_before).await?;
        }
        let keys: Vec<(i64, DateTime<Utc>)> = keys.iter().map(|&(h, r)| (r, h)).collect();
        store.replace_file_usage_hours(&keys, &rows).await?;
        written += rows.len() as i64;
    }
    Ok((written, top))
}

/// Before this time raw records may have been deleted (released) by the ageing task.
async fn released_before(store: &dyn Store) -> Result<DateTime<Utc>, ApiError> {
    let tasks = store.tasks().await?;
    let delete = tasks
        .iter()
        .find(|t| t.name == Task::DeleteAgedUsage.name());
    Ok(
        match delete.and_then(|t| Some((t.last_run_at?, t.age_days?))) {
            Some((ran, age)) => ran - chrono::Duration::days(i64::from(age)),
            None => DateTime::<Utc>::MIN_UTC,
        },
    )
}

/// Late records for an hour whose raw records were already deleted cannot be recomputed with
/// them: they are merged into the stored row instead. Time adds up exactly; distinct counts
/// and peaks become the larger of the two, a lower bound.
async fn merge_with_released(
    store: &dyn Store,
    rows: Vec<FileUsageHour>,
    released_before: DateTime<Utc>,
) -> Result<Vec<FileUsageHour>, ApiError> {
    let mut merged = Vec::with_capacity(rows.len());
    for mut row in rows {
        if row.hour < released_before {
            let next = row.hour + chrono::Duration::hours(1);
            if let Some(old) = store
                .file_usage_hours(Some(row.rule_id), row.hour, next)
                .await?
                .pop()
            {
                row.usage_ms += old.usage_ms;
                row.distinct_users = row.distinct_users.max(old.distinct_users);
                row.distinct_devices = row.distinct_devices.max(old.distinct_devices);
                row.distinct_ts_users = row.distinct_ts_users.max(old.distinct_ts_users);
                row.peak_concurrent_runs = row.peak_concurrent_runs.max(old.peak_concurrent_runs);
                row.peak_concurrent_users =
                    row.peak_concurrent_users.max(old.peak_concurrent_users);
            }
        }
        merged.push(row);
    }
    Ok(merged)
}

/// The hourly rows for `keys` (hour, rule) of one day, from the day's raw records.
fn hours_of_day(
    keys: &[(DateTime<Utc>, i64)],
    records: &[UsageRecord],
    rules_of_file: &HashMap<i64, Vec<i64>>,
) -> Vec<FileUsageHour> {
    let wanted: HashSet<(DateTime<Utc>, i64)> = keys.iter().copied().collect();
    let mut grouped: HashMap<(DateTime<Utc>, i64), Vec<&UsageRecord>> = HashMap::new();
    for r in records {
        for &rule in rules_of_file.get(&r.file_id).into_iter().flatten() {
            for hour in summary::hours_of(r) {
                if wanted.contains(&(hour, rule)) {
                    grouped.entry((hour, rule)).or_default().push(r);
                }
            }
        }
    }
    let mut rows: Vec<FileUsageHour> = grouped
        .into_iter()
        .filter_map(|((hour, rule), rs)| summary::file_usage_hour(rule, hour, &rs))
        .collect();
    rows.sort_by_key(|h| (h.hour, h.rule_id));
    rows
}

/// Adds new records to the monthly summary; the watermark moves with the rows, atomically.
async fn summarize_monthly(store: &dyn Store, watermark: i64) -> Result<(i64, i64), ApiError> {
    let top = store.max_time_serial().await?;
    if top <= watermark {
        return Ok((0, watermark));
    }
    let rules_of_file = rules_of_files(store).await?;
    let mut sums: BTreeMap<summary::MonthKey, summary::MonthlyUsage> = BTreeMap::new();
    for_new_records(store, (watermark, top), |page| {
        for (key, usage) in summary::monthly(page, &rules_of_file) {
            sums.entry(key)
                .and_modify(|u| u.add(&usage))
                .or_insert(usage);
        }
    })
    .await?;
    let rows: Vec<_> = sums.into_iter().collect();
    store.add_monthly_usage(&rows, (watermark, top)).await?;
    Ok((rows.len() as i64, top))
}

/// Which applications each stored file's usage belongs to: those whose recognition names a
/// metering rule (by name, any case) that meters the file.
async fn applications_of_files(store: &dyn Store) -> Result<HashMap<i64, Vec<i64>>, ApiError> {
    let rule_names: HashMap<i64, String> = store
        .rules()
        .await?
        .into_iter()
        .map(|r| (r.id, r.spec.name.to_lowercase()))
        .collect();
    let mut apps_of_rule: HashMap<String, Vec<i64>> = HashMap::new();
    for app in store.applications().await? {
        for r in app
            .recognition
            .iter()
            .filter(|r| !r.metering_rule.is_empty())
        {
            let apps = apps_of_rule
                .entry(r.metering_rule.to_lowercase())
                .or_default();
            apps.push(app.application.id);
        }
    }
    let mut map = HashMap::new();
    for (file, rules) in rules_of_files(store).await? {
        let mut apps: Vec<i64> = rules
            .iter()
            .filter_map(|rule| apps_of_rule.get(rule_names.get(rule)?))
            .flatten()
            .copied()
            .collect();
        apps.sort_unstable();
        apps.dedup();
        if !apps.is_empty() {
            map.insert(file, apps);
        }
    }
    Ok(map)
}

/// Records new runs as usage sessions of the applications that meter them. Re-reading
/// records (after a failed run) only grows sessions to what they already cover.
async fn record_sessions(store: &dyn Store, watermark: i64) -> Result<(i64, i64), ApiError> {
    let top = store.max_time_serial().await?;
    if top <= watermark {
        return Ok((0, watermark));
    }
    let apps_of_file = applications_of_files(store).await?;
    let mut sessions = tally_core::sessions::RunSessions::new();
    if !apps_of_file.is_empty() {
        for_new_records(store, (watermark, top), |page| {
            tally_core::sessions::add_records(&mut sessions, page, &apps_of_file);
        })
        .await?;
    }
    let rows: Vec<_> = sessions.into_values().collect();
    let written = store.put_run_sessions(&rows).await?;
    Ok((written as i64, top))
}

fn age_cutoff(task: &TaskState) -> DateTime<Utc> {
    let days = task
        .age_days
        .or(Task::parse(&task.name).and_then(|t| t.default_age_days()));
    Utc::now() - chrono::Duration::days(i64::from(days.unwrap_or(5)))
}

/// Deletes raw records older than the task's age that both summaries have taken in.
async fn delete_aged_usage(store: &dyn Store, task: &TaskState) -> Result<(i64, i64), ApiError> {
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
    let deleted = store
        .delete_aged_usage(age_cutoff(task), summarised)
        .await?;
    Ok((deleted as i64, task.watermark))
}

async fn delete_aged_summaries(
    store: &dyn Store,
    task: &TaskState,
) -> Result<(i64, i64), ApiError> {
    let cutoff = age_cutoff(task);
    // Whole months only: a month is deleted once all of it is older than the age.
    let month = summary::month_of(cutoff.date_naive().with_day(1).expect("day one"));
    let deleted = store.delete_aged_summaries(cutoff, month).await?;
    Ok((deleted as i64, task.watermark))
}

/// Runs due tasks every `check`, until the process ends.
pub async fn schedule(state: AppState, check: Duration) {
    let mut ticks = tokio::time::interval(check);
    loop {
        ticks.tick().await;
        let tasks = match state.store.tasks().await {
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
            match run(&state, task).await {
                Ok(_) => {}
                Err(ApiError::Conflict(_)) => {
                    tracing::debug!(task = t.name, "running elsewhere; skipped this time");
                }
                Err(e) => {
                    tracing::warn!(task = t.name, error = %e, "maintenance task could not run")
                }
            }
        }
    }
}

/// Today's compliance position of every application, kept per day for trends.
async fn snapshot_compliance(store: &dyn Store) -> Result<i64, ApiError> {
    let today = Utc::now().date_naive();
    let positions = crate::compliance::compute(store, today, None).await?;
    let rows = crate::compliance::snapshot_rows(today, &positions);
    store.put_snapshots(today, &rows).await?;
    Ok(rows.len() as i64)
}
