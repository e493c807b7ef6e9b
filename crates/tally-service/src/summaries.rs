//! The summarisation tasks' bodies: hourly rows recomputed from raw records, monthly rows
//! added once per record, and usage sessions of the applications that name a metering rule.
//! Each reads the records stored since its `TimeSerial` watermark and returns the rows written
//! and the new watermark. Which rules meter a record's file comes from [`FileRules`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use tally_core::summary::{self, FileUsageHour};
use tally_core::tasks::{Task, TaskState};
use tally_core::UsageRecord;
use tally_store::Store;

use crate::file_rules::FileRules;
use crate::Result;

/// Raw records read per page while summarising.
const PAGE: i64 = 10_000;

/// The records with `watermark < time_serial <= top`, a page at a time, each with the rules
/// of the files it names.
struct NewRecords<'a> {
    store: &'a dyn Store,
    file_rules: &'a FileRules,
    /// What bounds the work per record: the clock and the summaries' retention.
    window: summary::Window,
    range: (i64, i64),
    after: (i64, i64),
}

pub(crate) type RulesOfFile = HashMap<i64, Vec<i64>>;

impl NewRecords<'_> {
    /// The next page and its files' rules, or `None` after the last.
    async fn next(&mut self) -> Result<Option<(Vec<UsageRecord>, RulesOfFile)>> {
        let page = self
            .store
            .usage_by_serial(self.range, self.after, PAGE)
            .await?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        self.after = (last.time_serial, last.id);
        let rules_of_file = self.file_rules.of_records(self.store, &page).await?;
        Ok(Some((page, rules_of_file)))
    }
}

/// Runs summarisation task `task` over the records stored since `watermark` (up to the newest
/// now); returns the rows written and the new watermark. With nothing new, nothing is read. The
/// file → rule mapping is brought up to date with the rules first.
pub(crate) async fn summarize(
    task: Task,
    store: &dyn Store,
    file_rules: &FileRules,
    watermark: i64,
) -> Result<(i64, i64)> {
    let top = store.max_time_serial().await?;
    if top <= watermark {
        return Ok((0, watermark));
    }
    file_rules.refresh(store).await?;
    let pages = NewRecords {
        store,
        file_rules,
        window: window(store, Utc::now()).await?,
        range: (watermark, top),
        after: (watermark, 0),
    };
    let rows = match task {
        Task::SummarizeFileUsage => file_usage(pages).await?,
        Task::SummarizeMonthlyUsage => monthly(pages).await?,
        Task::RecordUsageSessions => sessions(pages).await?,
        other => unreachable!("{} does not summarise raw usage", other.name()),
    };
    Ok((rows, top))
}

/// The summaries' window at `now`: hourly and monthly rows older than "delete aged
/// summaries" keeps are deleted by it, so no record is summarised further back than that
/// before its end (`tally_core::summary::Window`).
async fn window(store: &dyn Store, now: DateTime<Utc>) -> Result<summary::Window> {
    let task = Task::DeleteAgedSummaries;
    let retention_days = store
        .tasks()
        .await?
        .into_iter()
        .find(|t| t.name == task.name())
        .and_then(|t| t.age_days)
        .or(task.default_age_days())
        .unwrap_or(i32::MAX);
    Ok(summary::Window {
        now,
        retention_days,
    })
}

/// Recomputes every (rule, hour) that new records touch, from all raw records of that hour,
/// reading the runs of hours they may touch (at most a day per read). Hours whose raw records
/// may be gone already (before the ageing task's cut-off) cannot be recomputed: the new
/// records' share is added to their stored rows instead, all in one transaction with the
/// watermark, so a run killed half-way and run again adds it exactly once. Returns the rows
/// written.
async fn file_usage(mut pages: NewRecords<'_>) -> Result<i64> {
    let (store, file_rules) = (pages.store, pages.file_rules);
    let released_before = released_before(store).await?;
    let mut written = 0;
    let late = match touched_runs(&pages, released_before).await? {
        Some(runs) => {
            for run in runs {
                written += recompute(store, file_rules, Keys::OfNew(&pages), run).await?;
            }
            Late::default()
        }
        None => {
            let (touched, late) = touched_by_records(&mut pages, released_before).await?;
            for (from, keys) in by_day(touched) {
                let day = (from, from + chrono::Duration::days(1));
                written += recompute(store, file_rules, Keys::Listed(&keys), day).await?;
            }
            late
        }
    };
    let rows = late.rows(store, file_rules, released_before).await?;
    let keys: Vec<(i64, DateTime<Utc>)> = rows.iter().map(|h| (h.rule_id, h.hour)).collect();
    store
        .replace_file_usage_hours_moving(&keys, &rows, pages.range)
        .await?;
    Ok(written + rows.len() as i64)
}

/// Which (hour, rule) keys of a range are recomputed.
enum Keys<'a> {
    /// These.
    Listed(&'a [(DateTime<Utc>, i64)]),
    /// Those the new records among the range's touch.
    OfNew(&'a NewRecords<'a>),
}

/// Recomputes `keys` from the raw records overlapping `range` (at most a day); returns the
/// rows written.
async fn recompute(
    store: &dyn Store,
    file_rules: &FileRules,
    keys: Keys<'_>,
    range: (DateTime<Utc>, DateTime<Utc>),
) -> Result<i64> {
    let records = store.usage_overlapping(range.0, range.1).await?;
    let rules_of_file = file_rules.of_records(store, &records).await?;
    let keys = match keys {
        Keys::Listed(keys) => keys.to_vec(),
        Keys::OfNew(pages) => new_keys(pages, &records, &rules_of_file, range),
    };
    if keys.is_empty() {
        return Ok(0);
    }
    let rows = hours_of_range(&keys, &records, &rules_of_file, range);
    replace(store, &keys, &rows).await
}

/// Replaces the stored rows of `keys` (those with no row now are deleted).
async fn replace(
    store: &dyn Store,
    keys: &[(DateTime<Utc>, i64)],
    rows: &[FileUsageHour],
) -> Result<i64> {
    let keys: Vec<(i64, DateTime<Utc>)> = keys.iter().map(|&(h, r)| (r, h)).collect();
    store.replace_file_usage_hours(&keys, rows).await?;
    Ok(rows.len() as i64)
}

/// The runs of consecutive hours (each within one day) that new records may touch, from the
/// database's distinct pairs of the hours of their start and end
/// (`UsageStore::usage_hour_spans`), without reading each record: the records of each run are
/// read once, to recompute it, and the new ones among them name the keys. `None` when some
/// record needs reading one by one: the window may clip it, or it may touch hours before
/// `released_before` (late records).
async fn touched_runs(
    pages: &NewRecords<'_>,
    released_before: DateTime<Utc>,
) -> Result<Option<Vec<(DateTime<Utc>, DateTime<Utc>)>>> {
    let Some(spans) = pages.store.usage_hour_spans(pages.range).await? else {
        return Ok(None);
    };
    let mut hours = BTreeSet::new();
    for (first, last) in spans {
        // Every record of the pair lies in [first, last + 1 h].
        let end = last + chrono::Duration::hours(1);
        if pages.window.span(first, end) != Some((first, end)) || first < released_before {
            return Ok(None);
        }
        let mut hour = first;
        while hour <= last {
            hours.insert(hour);
            hour += chrono::Duration::hours(1);
        }
    }
    let mut runs: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for hour in hours {
        let next = hour + chrono::Duration::hours(1);
        match runs.last_mut() {
            Some(run) if run.1 == hour && hour.date_naive() == run.0.date_naive() => run.1 = next,
            _ => runs.push((hour, next)),
        }
    }
    Ok(Some(runs))
}

/// The (hour, rule) keys in `run` of the new records among `records` (the run's).
fn new_keys(
    pages: &NewRecords<'_>,
    records: &[UsageRecord],
    rules_of_file: &RulesOfFile,
    run: (DateTime<Utc>, DateTime<Utc>),
) -> Vec<(DateTime<Utc>, i64)> {
    let (after, upto) = pages.range;
    let mut keys = BTreeSet::new();
    for r in records
        .iter()
        .filter(|r| r.time_serial > after && r.time_serial <= upto)
    {
        for &rule in rules_of_file.get(&r.file_id).into_iter().flatten() {
            let hours =
                summary::hours_of_period_within(r.start_time, r.end_time, &pages.window, run);
            keys.extend(hours.into_iter().map(|h| (h, rule)));
        }
    }
    keys.into_iter().collect()
}

/// The (hour, rule) keys new records touch, read record by record; those touching hours
/// before `released_before` are kept aside as late.
async fn touched_by_records(
    pages: &mut NewRecords<'_>,
    released_before: DateTime<Utc>,
) -> Result<(BTreeSet<(DateTime<Utc>, i64)>, Late)> {
    let mut touched = BTreeSet::new();
    let mut late = Late::default();
    while let Some((page, rules_of_file)) = pages.next().await? {
        for r in &page {
            let mut is_late = false;
            for &rule in rules_of_file.get(&r.file_id).into_iter().flatten() {
                for hour in summary::hours_of(r, &pages.window) {
                    if hour < released_before {
                        late.keys.insert((hour, rule));
                        is_late = true;
                    } else {
                        touched.insert((hour, rule));
                    }
                }
            }
            if is_late {
                late.records.push(r.clone());
            }
        }
    }
    Ok((touched, late))
}

/// New records that touch hours before the ageing task's cut-off, and those hours.
#[derive(Default)]
struct Late {
    keys: BTreeSet<(DateTime<Utc>, i64)>,
    records: Vec<UsageRecord>,
}

impl Late {
    /// The stored rows of the late hours with the new records' share added.
    async fn rows(
        &self,
        store: &dyn Store,
        file_rules: &FileRules,
        released_before: DateTime<Utc>,
    ) -> Result<Vec<FileUsageHour>> {
        if self.keys.is_empty() {
            return Ok(Vec::new());
        }
        let rules_of_file = file_rules.of_records(store, &self.records).await?;
        let mut rows = Vec::new();
        for (from, keys) in by_day(self.keys.clone()) {
            let day = (from, from + chrono::Duration::days(1));
            rows.extend(hours_of_range(&keys, &self.records, &rules_of_file, day));
        }
        merge_with_released(store, rows, released_before).await
    }
}

/// `keys` (hour, rule) grouped by the day they fall on, each day by its midnight.
fn by_day(
    keys: BTreeSet<(DateTime<Utc>, i64)>,
) -> BTreeMap<DateTime<Utc>, Vec<(DateTime<Utc>, i64)>> {
    let mut days: BTreeMap<DateTime<Utc>, Vec<(DateTime<Utc>, i64)>> = BTreeMap::new();
    for (hour, rule) in keys {
        let midnight = hour.date_naive().and_hms_opt(0, 0, 0).expect("midnight");
        days.entry(midnight.and_utc())
            .or_default()
            .push((hour, rule));
    }
    days
}

/// Before this time raw records may have been deleted (released) by the ageing task: the
/// newest cut-off it used, which its watermark keeps. A database aged before the watermark kept
/// it (0) falls back to the last run less the age set now, which raising the age since would
/// move back too far.
pub(crate) async fn released_before(store: &dyn Store) -> Result<DateTime<Utc>> {
    let tasks = store.tasks().await?;
    let delete = tasks
        .iter()
        .find(|t| t.name == Task::DeleteAgedUsage.name());
    if let Some(cutoff) = delete.and_then(TaskState::ageing_cutoff) {
        return Ok(cutoff);
    }
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
pub(crate) async fn merge_with_released(
    store: &dyn Store,
    rows: Vec<FileUsageHour>,
    released_before: DateTime<Utc>,
) -> Result<Vec<FileUsageHour>> {
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

/// The hourly rows for `keys` (hour, rule) in `range` (at most a day), from the raw records
/// overlapping it (each clipped to it, so a long record costs the range's hours, not its own
/// length).
pub(crate) fn hours_of_range(
    keys: &[(DateTime<Utc>, i64)],
    records: &[UsageRecord],
    rules_of_file: &RulesOfFile,
    range: (DateTime<Utc>, DateTime<Utc>),
) -> Vec<FileUsageHour> {
    let wanted: HashSet<(DateTime<Utc>, i64)> = keys.iter().copied().collect();
    let mut grouped: HashMap<(DateTime<Utc>, i64), Vec<&UsageRecord>> = HashMap::new();
    for r in records {
        for &rule in rules_of_file.get(&r.file_id).into_iter().flatten() {
            for hour in summary::hours_in(r.start_time, r.end_time, range) {
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
async fn monthly(mut pages: NewRecords<'_>) -> Result<i64> {
    let mut sums: BTreeMap<summary::MonthKey, summary::MonthlyUsage> = BTreeMap::new();
    while let Some((page, rules_of_file)) = pages.next().await? {
        for (key, usage) in summary::monthly(&page, &rules_of_file, &pages.window) {
            sums.entry(key)
                .and_modify(|u| u.add(&usage))
                .or_insert(usage);
        }
    }
    let rows: Vec<_> = sums.into_iter().collect();
    pages.store.add_monthly_usage(&rows, pages.range).await?;
    Ok(rows.len() as i64)
}

/// Which applications each metering rule's usage belongs to: those whose recognition names
/// the rule (by name, any case).
async fn applications_of_rules(store: &dyn Store) -> Result<HashMap<i64, Vec<i64>>> {
    let mut apps_of_name: HashMap<String, Vec<i64>> = HashMap::new();
    for app in store.applications().await? {
        for r in app
            .recognition
            .iter()
            .filter(|r| !r.metering_rule.is_empty())
        {
            let apps = apps_of_name
                .entry(r.metering_rule.to_lowercase())
                .or_default();
            apps.push(app.application.id);
        }
    }
    let mut apps_of_rule = HashMap::new();
    for rule in store.rules().await? {
        if let Some(apps) = apps_of_name.get(&rule.spec.name.to_lowercase()) {
            apps_of_rule.insert(rule.id, apps.clone());
        }
    }
    Ok(apps_of_rule)
}

/// The applications of each file, from the rules of each file.
fn applications_of_files(
    rules_of_file: RulesOfFile,
    apps_of_rule: &HashMap<i64, Vec<i64>>,
) -> HashMap<i64, Vec<i64>> {
    let mut map = HashMap::new();
    for (file, rules) in rules_of_file {
        let mut apps: Vec<i64> = rules
            .iter()
            .filter_map(|rule| apps_of_rule.get(rule))
            .flatten()
            .copied()
            .collect();
        apps.sort_unstable();
        apps.dedup();
        if !apps.is_empty() {
            map.insert(file, apps);
        }
    }
    map
}

/// Records new runs as usage sessions of the applications that meter them. Re-reading
/// records (after a failed run) only grows sessions to what they already cover.
async fn sessions(mut pages: NewRecords<'_>) -> Result<i64> {
    let apps_of_rule = applications_of_rules(pages.store).await?;
    let mut sessions = tally_core::sessions::RunSessions::new();
    if !apps_of_rule.is_empty() {
        while let Some((page, rules_of_file)) = pages.next().await? {
            let apps_of_file = applications_of_files(rules_of_file, &apps_of_rule);
            tally_core::sessions::add_records(&mut sessions, &page, &apps_of_file);
        }
    }
    let rows: Vec<_> = sessions.into_values().collect();
    let written = pages.store.put_run_sessions(&rows).await?;
    Ok(written as i64)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;
    use tally_core::rules::RuleSpec;
    use tally_core::{FileInfo, NewUsageRecord, RuleOrigin, SiteCode};
    use tally_store::prelude::*;

    fn at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, h, m, 0).unwrap()
    }

    /// A store with one metered file with records of `periods`, and one file that no rule
    /// meters with a record of its own.
    pub(crate) async fn store_with(
        periods: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> (tempfile::TempDir, tally_store::SqliteStore) {
        let (dir, store, device) = crate::test_store::with_a_device(at(1, 0, 0)).await;
        let site = SiteCode::parse("S01").unwrap();
        let user = store.upsert_user("alice", None).await.unwrap();
        let mut files = Vec::new();
        for name in ["code", "other"] {
            let info = FileInfo::named(name, "1");
            files.push(store.upsert_file(&info).await.unwrap());
        }
        let spec = RuleSpec {
            file_name: "code".into(),
            ..RuleSpec::named("Code")
        };
        (store.create_rule(&site, RuleOrigin::Manual, &spec, at(1, 0, 0), None))
            .await
            .unwrap();
        let unmetered = (at(6, 0, 0), at(6, 5, 0));
        let records: Vec<_> = (periods.iter().chain([&unmetered]).enumerate())
            .map(|(n, &(start, end))| {
                NewUsageRecord::whole_run(
                    format!("m{n}"),
                    (device, files[usize::from(n == periods.len())], user),
                    start,
                    end,
                )
            })
            .collect();
        store.insert_usage(&records).await.unwrap();
        (dir, store)
    }

    /// What each way finds: the keys of the runs of hours (`None`: they need the records) and
    /// the records'.
    async fn both(
        periods: &[(DateTime<Utc>, DateTime<Utc>)],
        released_before: DateTime<Utc>,
    ) -> (
        Option<BTreeSet<(DateTime<Utc>, i64)>>,
        BTreeSet<(DateTime<Utc>, i64)>,
    ) {
        let (_dir, store) = store_with(periods).await;
        let top = store.max_time_serial().await.unwrap();
        both_in(&store, (0, top), released_before).await
    }

    /// [`both`] for the records with `range.0 < time_serial <= range.1` of `store`.
    async fn both_in(
        store: &dyn Store,
        range: (i64, i64),
        released_before: DateTime<Utc>,
    ) -> (
        Option<BTreeSet<(DateTime<Utc>, i64)>>,
        BTreeSet<(DateTime<Utc>, i64)>,
    ) {
        let file_rules = FileRules::default();
        let mut pages = NewRecords {
            store,
            file_rules: &file_rules,
            window: summary::Window {
                now: at(31, 0, 0),
                retention_days: 10,
            },
            range,
            after: (range.0, 0),
        };
        let groups = match touched_runs(&pages, released_before).await.unwrap() {
            Some(runs) => {
                let mut keys = BTreeSet::new();
                for run in runs {
                    let records = store.usage_overlapping(run.0, run.1).await.unwrap();
                    let rules = file_rules.of_records(store, &records).await.unwrap();
                    keys.extend(new_keys(&pages, &records, &rules, run));
                }
                Some(keys)
            }
            None => None,
        };
        let (records, _) = touched_by_records(&mut pages, released_before)
            .await
            .unwrap();
        (groups, records)
    }

    /// Records stored after the watermark name the hours; older ones overlapping the same
    /// hours are read to recompute them but name none, and a record longer than a day (within
    /// the retention) names every hour of its days.
    #[tokio::test]
    async fn only_records_after_the_watermark_name_hours() {
        let old = [(at(2, 9, 10), at(2, 9, 40)), (at(2, 14, 0), at(2, 16, 30))];
        let (_dir, store) = store_with(&old).await;
        let first = store.max_time_serial().await.unwrap();
        let stored = store.usage_by_serial((0, first), (0, 0), 10).await.unwrap();
        let ids = (stored[0].device_id, stored[0].file_id, stored[0].user_id);
        let new = [
            NewUsageRecord::whole_run("n1", ids, at(2, 9, 50), at(2, 10, 5)),
            NewUsageRecord::whole_run("n2", ids, at(3, 22, 0), at(5, 1, 0)),
        ];
        store.insert_usage(&new).await.unwrap();
        let top = store.max_time_serial().await.unwrap();
        let (runs, records) = both_in(&store, (first, top), DateTime::<Utc>::MIN_UTC).await;
        let hours: Vec<_> = records.iter().map(|k| k.0).collect();
        assert_eq!(
            hours.len(),
            2 + 27,
            "09:00, 10:00 of the 2nd; 22:00 of the 3rd to 00:00 of the 5th"
        );
        assert!(
            !hours.contains(&at(2, 14, 0)),
            "the older record names none"
        );
        assert_eq!(runs, Some(records));
    }

    #[tokio::test]
    async fn hours_found_from_runs_are_those_found_from_each_record() {
        let periods = [
            (at(2, 9, 10), at(2, 9, 40)),   // within an hour
            (at(2, 9, 20), at(2, 11, 0)),   // ends on the hour: not 11:00
            (at(2, 9, 30), at(2, 11, 0)),   // the same hours
            (at(2, 10, 0), at(2, 10, 0)),   // an instant on the hour
            (at(2, 8, 50), at(2, 11, 0)),   // same group as the next
            (at(2, 8, 55), at(2, 11, 5)),   // reaches into 11:00
            (at(3, 23, 30), at(4, 1, 15)),  // over midnight
            (at(5, 12, 0), at(5, 11, 0)),   // ends before it starts
            (at(5, 12, 10), at(5, 11, 50)), // the same, in one hour
        ];
        let (groups, records) = both(&periods, DateTime::<Utc>::MIN_UTC).await;
        let hours: Vec<_> = records.iter().map(|k| k.0).collect();
        let mut want = vec![at(2, 8, 0), at(2, 9, 0), at(2, 10, 0), at(2, 11, 0)];
        want.extend([at(3, 23, 0), at(4, 0, 0), at(4, 1, 0)]);
        assert_eq!(hours, want, "nothing of the 5th, nor of the unmetered 6th");
        assert_eq!(groups, Some(records));
    }

    #[tokio::test]
    async fn records_the_window_clips_or_late_ones_are_read_one_by_one() {
        // Longer than the retention (10 days): clipped to the days before its end.
        let long = [(at(2, 9, 0), at(2, 9, 30)), (at(1, 0, 0), at(25, 0, 0))];
        let (groups, records) = both(&long, DateTime::<Utc>::MIN_UTC).await;
        assert_eq!(groups, None);
        let hours: BTreeSet<_> = records.iter().map(|k| k.0).collect();
        assert!(hours.contains(&at(15, 0, 0)) && !hours.contains(&at(14, 23, 0)));
        // Touching hours before the ageing's cut-off: late.
        let late = [(at(2, 9, 0), at(2, 9, 30)), (at(9, 9, 0), at(9, 10, 30))];
        let (groups, records) = both(&late, at(5, 0, 0)).await;
        assert_eq!(groups, None);
        assert_eq!(
            records.len(),
            2,
            "09:00 and 10:00 of the 9th; the 2nd is late"
        );
    }
}
