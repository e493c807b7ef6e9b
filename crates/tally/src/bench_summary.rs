//! `tally bench summarize`: how long the two summarisation tasks take over many raw records,
//! and how much memory they need. The baseline, in the same run, is a plain read of every
//! record in `TimeSerial` order: the floor any incremental summariser pays.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{TimeZone, Utc};
use clap::Args;
use tally_core::device::NewDevice;
use tally_core::rules::RuleSpec;
use tally_core::tasks::Task;
use tally_core::{FileInfo, RuleOrigin};
use tally_service::Service;
use tally_store::prelude::*;
use tally_store::NewUsageRecord;

#[derive(Args, Debug, Clone)]
pub struct SummaryBenchArgs {
    /// Database to use [default: a new SQLite file in a temporary directory]. Records are
    /// generated only into an empty database; one that holds usage is summarised as it is.
    #[arg(long)]
    database_url: Option<String>,
    /// Raw records to generate.
    #[arg(long, default_value_t = 10_000_000)]
    records: usize,
    /// Devices the records come from (one user each, two devices per user).
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Days the records spread over.
    #[arg(long, default_value_t = 30)]
    days: usize,
    /// The order records are stored in: `chronological`, by start time, as agents upload them
    /// (each reports what just ran), or `shuffled`, scattered over the period as when many
    /// agents come back online with days of records each (the same records either way).
    #[arg(long, value_enum, default_value_t = Order::Chronological)]
    order: Order,
}

/// The order generated records are stored in.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Chronological,
    Shuffled,
}

/// Programs, each metered by its own rule.
const PROGRAMS: usize = 40;
const BATCH: usize = 5000;

pub async fn summarize(args: SummaryBenchArgs) -> Result<()> {
    let temp = tempfile::tempdir().context("temporary directory")?;
    let (store, site) =
        crate::bench_agent::bench_store(args.database_url.as_deref(), temp.path()).await?;
    println!(
        "tally bench summarize: backend {}, {} records from {} devices over {} days, {PROGRAMS} rules, stored {:?}",
        store.backend(),
        args.records,
        args.devices,
        args.days,
        args.order
    );
    let existing = store.max_time_serial().await?;
    if existing > 0 {
        // A database given with --database-url that holds records already: summarise those.
        println!("using the records already stored ({existing} batches)");
    } else {
        let loaded = Instant::now();
        generate(store.as_ref(), &site, &args).await?;
        let secs = loaded.elapsed().as_secs_f64();
        println!("generated in    : {secs:>8.1} s");
    }

    reset_peak_rss();
    let (read, rows) = read_all(store.as_ref()).await?;
    let read_rss = peak_rss_mb();
    println!(
        "baseline read   : {:>8.1} s, peak RSS {read_rss:.0} MB ({rows} records)",
        read.as_secs_f64()
    );
    let service = Service::new(store.clone(), site);
    for task in [Task::SummarizeFileUsage, Task::SummarizeMonthlyUsage] {
        reset_peak_rss();
        let started = Instant::now();
        let after = tally_service::maintenance::run(&service, task)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(e) = after.last_error {
            anyhow::bail!("{} failed: {e}", task.name());
        }
        println!(
            "{:<16}: {:>8.1} s, peak RSS {:.0} MB, {} rows",
            task.name().trim_start_matches("summarize_"),
            started.elapsed().as_secs_f64(),
            peak_rss_mb(),
            after.last_rows.unwrap_or(0)
        );
    }
    // A second run has nothing new to read: the incremental path's fixed cost.
    let started = Instant::now();
    tally_service::maintenance::run(&service, Task::SummarizeFileUsage)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "re-run, nothing new: {:>5.3} s",
        started.elapsed().as_secs_f64()
    );
    an_hour_more(store.as_ref(), &service, &args).await
}

/// What a scheduled run costs on a live site: the records of the period's last hour are
/// reported again (the same runs under new ids, as if more devices had run them), then
/// summarised, against a plain read of just those new records.
async fn an_hour_more(store: &dyn Store, service: &Service, args: &SummaryBenchArgs) -> Result<()> {
    let hour = base() + chrono::Duration::days(args.days as i64) - chrono::Duration::hours(1);
    let top = store.max_time_serial().await?;
    let again: Vec<NewUsageRecord> = store
        .usage_overlapping(hour, hour + chrono::Duration::hours(1))
        .await?
        .into_iter()
        .filter(|r| r.start_time >= hour)
        .map(|r| NewUsageRecord {
            meter_data_id: format!("{}+", r.meter_data_id),
            ..NewUsageRecord::whole_run(
                "",
                (r.device_id, r.file_id, r.user_id),
                r.start_time,
                r.end_time,
            )
        })
        .collect();
    if again.is_empty() {
        println!("an hour more    : no records start at {hour}, the period's last hour");
        return Ok(());
    }
    for batch in again.chunks(BATCH) {
        store.insert_usage(batch).await?;
    }
    let upto = store.max_time_serial().await?;
    let started = Instant::now();
    let mut after = (top, i64::MAX);
    while let Some(last) = store
        .usage_by_serial((top, upto), after, 10_000)
        .await?
        .pop()
    {
        after = (last.time_serial, last.id);
    }
    let read = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let run = tally_service::maintenance::run(service, Task::SummarizeFileUsage)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "an hour more    : {} records at {hour}: file_usage {:.3} s, {} rows; their plain read {read:.3} s",
        again.len(),
        started.elapsed().as_secs_f64(),
        run.last_rows.unwrap_or(0)
    );
    Ok(())
}

async fn generate(
    store: &dyn Store,
    site: &tally_core::SiteCode,
    args: &SummaryBenchArgs,
) -> Result<()> {
    let now = Utc::now();
    let mut devices = Vec::with_capacity(args.devices);
    for d in 0..args.devices {
        let new = NewDevice::named(site, format!("pc{d}"));
        devices.push(store.create_device(&new, now).await?.id);
    }
    let mut users = Vec::new();
    for u in 0..args.devices.div_ceil(2) {
        users.push(store.upsert_user(&format!("user{u}"), None).await?);
    }
    let mut files = Vec::new();
    for p in 0..PROGRAMS {
        let name = format!("prog{p}");
        let info = FileInfo::named(&name, "1.0");
        files.push(store.upsert_file(&info).await?);
        let spec = RuleSpec {
            name: name.clone(),
            file_name: name,
            original_file_name: String::new(),
            file_version: String::new(),
            language: tally_core::file::ANY_LANGUAGE,
            product_name: String::new(),
            comment: String::new(),
            apply_to_child_sites: false,
            enabled: true,
        };
        store
            .create_rule(site, RuleOrigin::Manual, &spec, now, None)
            .await?;
    }
    let base = base();
    let span_minutes = (args.days * 24 * 60) as i64;
    let mut batch = Vec::with_capacity(BATCH);
    for n in record_order(args.records, span_minutes, args.order)? {
        let d = n % devices.len();
        let start = base + chrono::Duration::minutes(start_minute(n, span_minutes));
        batch.push(NewUsageRecord {
            meter_data_id: format!("m{n}"),
            device_id: devices[d],
            file_id: files[n % PROGRAMS],
            user_id: users[d / 2],
            start_time: start,
            start_time_offset: 60,
            end_time: start + chrono::Duration::minutes(15),
            end_time_offset: 60,
            started: true,
            still_running: false,
            start_not_captured: false,
            end_not_captured: false,
            in_ts_session: n % 11 == 0,
        });
        if batch.len() == BATCH {
            store.insert_usage(&batch).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.insert_usage(&batch).await?;
    }
    Ok(())
}

/// The start of the generated records' period.
fn base() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// Record `n` starts this many minutes into the period: spread over it by a step prime to its
/// length, so every minute gets its share; 15-minute cycles as agents report them.
fn start_minute(n: usize, span_minutes: i64) -> i64 {
    (n as i64 * STEP) % span_minutes
}

/// The step of [`start_minute`].
const STEP: i64 = 7919;

/// The numbers of the records to generate, in the order they are stored: shuffled is the
/// order of `n`; chronological visits each minute of the period in turn and, for each, the
/// records [`start_minute`] puts there (`n ≡ minute × STEP⁻¹` modulo the period's length).
fn record_order(
    records: usize,
    span_minutes: i64,
    order: Order,
) -> Result<Box<dyn Iterator<Item = usize>>> {
    if order == Order::Shuffled {
        return Ok(Box::new(0..records));
    }
    let inverse = inverse_mod(STEP, span_minutes)
        .with_context(|| format!("{span_minutes} minutes share a factor with {STEP}"))?;
    let span = span_minutes as usize;
    Ok(Box::new((0..span_minutes).flat_map(move |minute| {
        let first =
            ((i128::from(minute) * i128::from(inverse)) % i128::from(span_minutes)) as usize;
        (first..records).step_by(span)
    })))
}

/// `x` with `a·x ≡ 1 (mod m)`, when `a` and `m` share no factor (extended Euclid).
fn inverse_mod(a: i64, m: i64) -> Option<i64> {
    let (mut old_r, mut r) = (a.rem_euclid(m), m);
    let (mut old_s, mut s) = (1i64, 0i64);
    while r != 0 {
        let q = old_r / r;
        (old_r, r) = (r, old_r - q * r);
        (old_s, s) = (s, old_s - q * s);
    }
    (old_r == 1).then(|| old_s.rem_euclid(m))
}

async fn read_all(store: &dyn Store) -> Result<(Duration, usize)> {
    let started = Instant::now();
    let top = store.max_time_serial().await?;
    let mut after = (0, 0);
    let mut rows = 0;
    loop {
        let page = store.usage_by_serial((0, top), after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = (last.time_serial, last.id);
        rows += page.len();
    }
    Ok((started.elapsed(), rows))
}

/// Resets this process's peak resident set (`VmHWM`) so the next phase is measured alone.
pub(crate) fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        tracing::warn!(error = %e, "cannot reset the peak RSS; figures include earlier phases");
    }
}

pub(crate) fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both orders generate the same records: each number once.
    #[test]
    fn chronological_order_is_the_same_records_by_start() {
        let span = 3 * 24 * 60;
        let mut shuffled: Vec<usize> = record_order(10_000, span, Order::Shuffled)
            .unwrap()
            .collect();
        let chronological: Vec<usize> = record_order(10_000, span, Order::Chronological)
            .unwrap()
            .collect();
        let starts: Vec<i64> = chronological
            .iter()
            .map(|&n| start_minute(n, span))
            .collect();
        assert!(starts.windows(2).all(|w| w[0] <= w[1]), "by start");
        let mut sorted = chronological.clone();
        sorted.sort_unstable();
        shuffled.sort_unstable();
        assert_eq!(sorted, shuffled);
        assert_eq!(inverse_mod(STEP, 7919), None);
    }
}
