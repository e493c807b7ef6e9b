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
/// a day at a time. Hours whose raw records may be gone already (before the ageing task's
/// cut-off) cannot be recomputed: the new records' share is added to their stored rows instead,
/// all in one transaction with the watermark, so a run killed half-way and run again adds it
/// exactly once. Returns the rows written.
async fn file_usage(mut pages: NewRecords<'_>) -> Result<i64> {
    let (store, file_rules) = (pages.store, pages.file_rules);
    let released_before = released_before(store).await?;
    let (touched, late) = match touched_by_groups(&pages, released_before).await? {
        Some(touched) => (touched, Late::default()),
        None => touched_by_records(&mut pages, released_before).await?,
    };
    let mut written = 0;
    for (from, keys) in by_day(touched) {
        let records = store
            .usage_overlapping(from, from + chrono::Duration::days(1))
            .await?;
        let rules_of_file = file_rules.of_records(store, &records).await?;
        let rows = hours_of_day(&keys, &records, &rules_of_file, from);
        let keys: Vec<(i64, DateTime<Utc>)> = keys.iter().map(|&(h, r)| (r, h)).collect();
        store.replace_file_usage_hours(&keys, &rows).await?;
        written += rows.len() as i64;
    }
    let rows = late.rows(store, file_rules, released_before).await?;
    let keys: Vec<(i64, DateTime<Utc>)> = rows.iter().map(|h| (h.rule_id, h.hour)).collect();
    store
        .replace_file_usage_hours_moving(&keys, &rows, pages.range)
        .await?;
    Ok(written + rows.len() as i64)
}

/// The (hour, rule) keys new records touch, from the database's groups of them by file and by
/// the hours of their start and end (`UsageStore::usage_hour_groups`), without reading each
/// record. In a group every start lies in one hour and every end in one, so when the window
/// clips none of its records the hours they touch together run from its earliest start to its
/// latest end (an end exactly on the hour reaches into it only when the group's latest end is
/// past it, i.e. when some record's is). `None` when some group needs its records one by one:
/// the window clips it, or it touches hours before `released_before` (late records).
async fn touched_by_groups(
    pages: &NewRecords<'_>,
    released_before: DateTime<Utc>,
) -> Result<Option<BTreeSet<(DateTime<Utc>, i64)>>> {
    let (store, window) = (pages.store, &pages.window);
    let groups = store.usage_hour_groups(pages.range).await?;
    let files: Vec<i64> = groups.iter().map(|g| g.file_id).collect();
    let rules_of_file = pages.file_rules.of_files(store, &files).await?;
    let mut touched = BTreeSet::new();
    for g in groups {
        let Some(rules) = rules_of_file.get(&g.file_id) else {
            continue;
        };
        let hour = summary::hour_start;
        let (start, end) = (g.start.0, g.end.1);
        if hour(g.start.0) != hour(g.start.1)
            || hour(g.end.0) != hour(g.end.1)
            || window.span(start, end) != Some((start, end))
            || hour(start) < released_before
        {
            return Ok(None);
        }
        for h in summary::hours_of_period(start, end, window) {
            touched.extend(rules.iter().map(|&rule| (h, rule)));
        }
    }
    Ok(Some(touched))
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
            rows.extend(hours_of_day(&keys, &self.records, &rules_of_file, from));
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

/// The hourly rows for `keys` (hour, rule) of the day from `day`, from the day's raw records
/// (each clipped to the day, so a long record costs the day's 24 hours, not its own length).
pub(crate) fn hours_of_day(
    keys: &[(DateTime<Utc>, i64)],
    records: &[UsageRecord],
    rules_of_file: &RulesOfFile,
    day: DateTime<Utc>,
) -> Vec<FileUsageHour> {
    let wanted: HashSet<(DateTime<Utc>, i64)> = keys.iter().copied().collect();
    let mut grouped: HashMap<(DateTime<Utc>, i64), Vec<&UsageRecord>> = HashMap::new();
    let day = (day, day + chrono::Duration::days(1));
    for r in records {
        for &rule in rules_of_file.get(&r.file_id).into_iter().flatten() {
            for hour in summary::hours_in(r.start_time, r.end_time, day) {
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
    use tally_core::device::NewDevice;
    use tally_core::rules::RuleSpec;
    use tally_core::{FileInfo, NewUsageRecord, RuleOrigin, Site, SiteCode};
    use tally_store::prelude::*;

    fn at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, h, m, 0).unwrap()
    }

    /// A store with one metered file with records of `periods`, and one file that no rule
    /// meters with a record of its own.
    pub(crate) async fn store_with(
        periods: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> (tempfile::TempDir, tally_store::SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = tally_store::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        let site = SiteCode::parse("S01").unwrap();
        store
            .put_site(&Site::central(site.clone(), "Main"))
            .await
            .unwrap();
        let new = NewDevice::named(&site, "pc");
        let device = store.create_device(&new, at(1, 0, 0)).await.unwrap().id;
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

    /// What each way finds: the groups' keys (`None`: they need the records) and the records'.
    async fn both(
        periods: &[(DateTime<Utc>, DateTime<Utc>)],
        released_before: DateTime<Utc>,
    ) -> (
        Option<BTreeSet<(DateTime<Utc>, i64)>>,
        BTreeSet<(DateTime<Utc>, i64)>,
    ) {
        let (_dir, store) = store_with(periods).await;
        let file_rules = FileRules::default();
        let top = store.max_time_serial().await.unwrap();
        let mut pages = NewRecords {
            store: &store,
            file_rules: &file_rules,
            window: summary::Window {
                now: at(31, 0, 0),
                retention_days: 10,
            },
            range: (0, top),
            after: (0, 0),
        };
        let groups = touched_by_groups(&pages, released_before).await.unwrap();
        let (records, _) = touched_by_records(&mut pages, released_before)
            .await
            .unwrap();
        (groups, records)
    }

    #[tokio::test]
    async fn hours_found_from_groups_are_those_found_from_each_record() {
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
