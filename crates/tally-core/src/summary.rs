//! Usage summaries, as Configuration Manager's two summarisation tasks make them (seed 000:
//! "software metering data held on the site database is summarized on a specified schedule").
//!
//! - **File usage**, per rule and clock hour (UTC, so that every client's usage lands on one
//!   clock whatever its offset): distinct users, distinct devices, distinct users in remote
//!   sessions, total usage time, and the instantaneous peak of concurrent runs and of
//!   concurrent users. Distinct counts and peaks do not add up, so an hour is always recomputed
//!   whole from the raw records that overlap it.
//! - **Monthly usage**, per rule × device × user × month of the client's own calendar (a run at
//!   23:30 UTC on 31 January by a client at UTC+2 is February usage to that user): runs, usage
//!   time and last use. These add up, so each raw record is added exactly once, when the
//!   summariser first sees its `TimeSerial`; a run is counted by its first record (the one
//!   flagged `Started` or `StartNotCaptured`), so a run over many cycles counts once.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::usage::UsageRecord;

/// One rule's usage in one clock hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileUsageHour {
    pub rule_id: i64,
    pub hour: DateTime<Utc>,
    pub distinct_users: i64,
    pub distinct_devices: i64,
    /// Distinct users running it in a remote session (the seed's `InTSSession`).
    pub distinct_ts_users: i64,
    /// Total running time of all runs within the hour, in milliseconds.
    pub usage_ms: i64,
    /// Most runs at one instant.
    pub peak_concurrent_runs: i64,
    /// Most distinct users at one instant (parallel runs by one user count once).
    pub peak_concurrent_users: i64,
}

/// One rule's monthly usage summed over devices and users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMonth {
    pub rule_id: i64,
    /// `yyyymm` on the clients' calendars.
    pub month: i32,
    pub runs: i64,
    pub users: i64,
    pub devices: i64,
    pub usage_ms: i64,
}

/// Whose use of a rule a per-user or per-device sum is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageByKind {
    User,
    Device,
}

/// One user's (or device's) use of a rule over a span of months.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageBy {
    pub id: i64,
    /// The user's account, or the device's host name.
    pub name: String,
    /// The user's full name, or the device's FQDN.
    pub detail: Option<String>,
    pub runs: i64,
    pub usage_ms: i64,
    /// Distinct devices the user ran it on, or distinct users who ran it on the device.
    pub others: i64,
    pub last_used: DateTime<Utc>,
}

/// The key of a monthly summary row: rule, device, user and month (`yyyymm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MonthKey {
    pub rule_id: i64,
    pub device_id: i64,
    pub user_id: i64,
    pub month: i32,
}

/// What records add to one monthly row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthlyUsage {
    pub runs: i64,
    pub usage_ms: i64,
    pub last_used: DateTime<Utc>,
}

impl MonthlyUsage {
    pub fn add(&mut self, other: &MonthlyUsage) {
        self.runs += other.runs;
        self.usage_ms += other.usage_ms;
        self.last_used = self.last_used.max(other.last_used);
    }
}

/// The start of the clock hour (UTC) holding `t`. Computed on the Unix time, which has no
/// leap seconds: the summarisers call it for every hour of every record, and clearing the
/// minute, second and nanosecond one field at a time cost a few percent of a summary's time.
pub fn hour_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp();
    DateTime::from_timestamp(secs - secs.rem_euclid(3600), 0)
        .expect("an hour's start lies within chrono's range when the time does")
}

/// What bounds the summaries' work per record: the clock (records are clipped to the
/// plausible window, `crate::limits::plausible_times`) and the summaries' retention (rows
/// older than it are deleted by "delete aged summaries" anyway, so a record is only
/// summarised over the retention before its end). Without it, one record from 1970 made the
/// hourly summary write every hour since, for minutes, whatever its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub now: DateTime<Utc>,
    pub retention_days: i32,
}

impl Window {
    /// The part of `[start, end]` the summaries work on: at most `retention_days` before its
    /// (plausible) end, and nothing outside the plausible window. `None`: nothing of it.
    pub fn span(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let (floor, ceiling) = crate::limits::plausible_times(self.now);
        let end = end.min(ceiling);
        let start = start
            .max(floor)
            .max(end - Duration::days(i64::from(self.retention_days.max(1))));
        (start <= end).then_some((start, end))
    }
}

/// The clock hours a record's period overlaps, within the summaries' [`Window`]: at most the
/// retention's hours, whatever the record's length. An instant (start = end) lies in its hour.
pub fn hours_of(r: &UsageRecord, window: &Window) -> Vec<DateTime<Utc>> {
    hours_of_period(r.start_time, r.end_time, window)
}

/// [`hours_of`] for the period `[start, end]` of a record.
pub fn hours_of_period(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    window: &Window,
) -> Vec<DateTime<Utc>> {
    match window.span(start, end) {
        Some((start, end)) => hours_between(start, end),
        None => Vec::new(),
    }
}

/// The clock hours `[start, end)` touches that lie in `[from, to)`: the period is clipped
/// first, so the work is bounded by `[from, to)` however long the period is.
pub fn hours_in(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Vec<DateTime<Utc>> {
    match clip(start, end, from, to) {
        Some((s, e)) => hours_between(s, e),
        None => Vec::new(),
    }
}

/// The hours of [`hours_of_period`] that lie in `[from, to)` (both on the hour), without
/// listing the others: what one read of the hours `[from, to)` needs of a record that may be
/// far longer.
pub fn hours_of_period_within(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    window: &Window,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Vec<DateTime<Utc>> {
    let Some((start, end)) = window.span(start, end) else {
        return Vec::new();
    };
    let first = hour_start(start);
    let mut hour = first.max(from);
    // A period always lies in its first hour, however short (as in `hours_between`).
    let last = last_hour(start, end)
        .max(first)
        .min(to - Duration::hours(1));
    let mut hours = Vec::new();
    while hour <= last {
        hours.push(hour);
        hour += Duration::hours(1);
    }
    hours
}

/// The hour holding the last instant of `[start, end]` that counts: one ending exactly on the
/// hour does not reach into it (an instant lies in its own hour).
fn last_hour(start: DateTime<Utc>, end: DateTime<Utc>) -> DateTime<Utc> {
    if end > start {
        hour_start(end - Duration::microseconds(1))
    } else {
        hour_start(end)
    }
}

/// Every clock hour from `start`'s to the one holding the last instant before `end`; one
/// ending exactly on the hour does not reach into the next.
fn hours_between(start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let last = last_hour(start, end);
    let mut hour = hour_start(start);
    let mut hours = vec![hour];
    while hour < last {
        hour += Duration::hours(1);
        hours.push(hour);
    }
    hours
}

/// The part of `[start, end)` inside `[from, to)`, if any. An instant counts when it lies
/// inside.
fn clip(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (s, e) = (start.max(from), end.min(to));
    if s < e || (start == end && start >= from && start < to) {
        Some((s, e))
    } else {
        None
    }
}

/// A run's period within an hour, with its user.
type Period = (DateTime<Utc>, DateTime<Utc>, i64);

/// One rule's summary for `hour`, from every raw record of the rule that overlaps it (records
/// that do not are ignored). `None` when nothing ran.
pub fn file_usage_hour(
    rule_id: i64,
    hour: DateTime<Utc>,
    records: &[&UsageRecord],
) -> Option<FileUsageHour> {
    let end = hour + Duration::hours(1);
    let mut users = HashSet::new();
    let mut devices = HashSet::new();
    let mut ts_users = HashSet::new();
    let mut usage_ms = 0;
    // Per instance, its clipped periods; an instance's consecutive records touch end to start.
    let mut runs: HashMap<(i64, &str), Vec<Period>> = HashMap::new();
    for r in records {
        let Some((s, e)) = clip(r.start_time, r.end_time, hour, end) else {
            continue;
        };
        users.insert(r.user_id);
        devices.insert(r.device_id);
        if r.in_ts_session {
            ts_users.insert(r.user_id);
        }
        usage_ms += (e - s).num_milliseconds();
        runs.entry((r.device_id, r.meter_data_id.as_str()))
            .or_default()
            .push((s, e, r.user_id));
    }
    if users.is_empty() {
        return None;
    }
    let (peak_runs, peak_users) = peaks(runs.into_values());
    Some(FileUsageHour {
        rule_id,
        hour,
        distinct_users: users.len() as i64,
        distinct_devices: devices.len() as i64,
        distinct_ts_users: ts_users.len() as i64,
        usage_ms,
        peak_concurrent_runs: peak_runs,
        peak_concurrent_users: peak_users,
    })
}

/// The most runs, and the most distinct users, at one instant. Each run's periods are joined
/// first so a cycle boundary is not an end and a start; at one instant ends go before starts,
/// so a run ending as another starts is not counted as overlapping it.
fn peaks(runs: impl Iterator<Item = Vec<(DateTime<Utc>, DateTime<Utc>, i64)>>) -> (i64, i64) {
    let mut events: Vec<(DateTime<Utc>, i8, i64)> = Vec::new();
    for mut periods in runs {
        periods.sort();
        let mut joined: Vec<Period> = Vec::new();
        for p in periods {
            match joined.last_mut() {
                Some(last) if p.0 <= last.1 => last.1 = last.1.max(p.1),
                _ => joined.push(p),
            }
        }
        for (s, e, user) in joined {
            events.push((s, 1, user));
            // An instant still counts as running at that instant.
            events.push((e.max(s + Duration::microseconds(1)), -1, user));
        }
    }
    events.sort_by_key(|&(t, delta, _)| (t, delta));
    let (mut runs, mut peak_runs, mut peak_users) = (0i64, 0i64, 0i64);
    let mut by_user: HashMap<i64, i64> = HashMap::new();
    for (_, delta, user) in events {
        runs += i64::from(delta);
        let n = by_user.entry(user).or_default();
        *n += i64::from(delta);
        if *n == 0 {
            by_user.remove(&user);
        }
        peak_runs = peak_runs.max(runs);
        peak_users = peak_users.max(by_user.len() as i64);
    }
    (peak_runs, peak_users)
}

/// `yyyymm` of a date.
pub fn month_of(date: NaiveDate) -> i32 {
    date.year() * 100 + date.month() as i32
}

/// The first instant of month `yyyymm` on a clock `offset_minutes` ahead of UTC, in UTC.
fn month_start_utc(month: i32, offset_minutes: i32) -> DateTime<Utc> {
    let date = NaiveDate::from_ymd_opt(month / 100, (month % 100) as u32, 1).expect("valid month");
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
        - Duration::minutes(i64::from(offset_minutes))
}

fn next_month(month: i32) -> i32 {
    if month % 100 == 12 {
        (month / 100 + 1) * 100 + 1
    } else {
        month + 1
    }
}

/// What one raw record adds to the monthly summary of each rule that meters it. Months are
/// the client's: the record's end offset places it on the client's calendar. Only the part
/// of the record in the summaries' [`Window`] is added (so the months walked are bounded by
/// the retention); its run counts in its own first month, if that is in the window.
pub fn monthly_of(
    rule_ids: &[i64],
    r: &UsageRecord,
    window: &Window,
) -> Vec<(MonthKey, MonthlyUsage)> {
    let Some((start, end)) = window.span(r.start_time, r.end_time) else {
        return Vec::new();
    };
    let offset = r.end_time_offset;
    let local = |t: DateTime<Utc>| (t + Duration::minutes(i64::from(offset))).date_naive();
    let first = month_of(local(r.start_time));
    let last = month_of(local(end));
    let mut parts = Vec::new();
    let mut month = month_of(local(start));
    loop {
        let from = month_start_utc(month, offset);
        let to = month_start_utc(next_month(month), offset);
        if let Some((s, e)) = clip(start, end, from, to) {
            let first_record = r.started || r.start_not_captured;
            parts.push((
                month,
                MonthlyUsage {
                    runs: i64::from(first_record && month == first),
                    usage_ms: (e - s).num_milliseconds(),
                    last_used: e,
                },
            ));
        }
        if month >= last {
            break;
        }
        month = next_month(month);
    }
    rule_ids
        .iter()
        .flat_map(|&rule_id| {
            parts.iter().map(move |&(month, usage)| {
                let key = MonthKey {
                    rule_id,
                    device_id: r.device_id,
                    user_id: r.user_id,
                    month,
                };
                (key, usage)
            })
        })
        .collect()
}

/// Adds up [`monthly_of`] over many records.
pub fn monthly(
    records: &[UsageRecord],
    rules_of_file: &HashMap<i64, Vec<i64>>,
    window: &Window,
) -> BTreeMap<MonthKey, MonthlyUsage> {
    let mut out: BTreeMap<MonthKey, MonthlyUsage> = BTreeMap::new();
    for r in records {
        let Some(rules) = rules_of_file.get(&r.file_id) else {
            continue;
        };
        for (key, usage) in monthly_of(rules, r, window) {
            out.entry(key)
                .and_modify(|u| u.add(&usage))
                .or_insert(usage);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Summaries run on 1 June 2026 with the default retention.
    const W: Window = Window {
        now: DateTime::from_timestamp_nanos(1_780_315_200_000_000_000),
        retention_days: 270,
    };

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, h, m, 0).unwrap()
    }

    fn rec(id: &str, user: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> UsageRecord {
        crate::usage::test_stored(crate::NewUsageRecord {
            file_id: 7,
            user_id: user,
            ..crate::usage::test_record(id, start, end)
        })
    }

    /// The hours of a period within a range are those of the whole period that lie in it:
    /// periods before, after, across and on the range's edges, instants, ends on the hour and
    /// on midnight, one ending before it starts, and one longer than the retention.
    #[test]
    fn hours_within_a_range_are_the_periods_hours_in_it() {
        let periods = [
            (at(5, 9, 40), at(5, 10, 20)),
            (at(5, 0, 0), at(5, 0, 0)),
            (at(4, 23, 0), at(5, 0, 0)),
            (at(4, 22, 30), at(5, 1, 0)),
            (at(5, 23, 59), at(6, 0, 0)),
            (at(5, 23, 59), at(6, 0, 1)),
            (at(6, 0, 0), at(6, 0, 0)),
            (at(5, 12, 0), at(5, 11, 0)),
            (at(3, 0, 0), at(9, 0, 0)),
        ];
        let short = Window {
            retention_days: 2,
            ..W
        };
        let ranges = [(at(5, 0, 0), at(6, 0, 0)), (at(5, 10, 0), at(5, 12, 0))];
        for window in [W, short] {
            for range in ranges {
                for (start, end) in periods {
                    let mut want = hours_of_period(start, end, &window);
                    want.retain(|h| *h >= range.0 && *h < range.1);
                    let got = hours_of_period_within(start, end, &window, range);
                    assert_eq!(got, want, "{start}..{end} in {range:?}");
                }
            }
        }
    }

    #[test]
    fn a_run_across_an_hour_boundary_counts_in_both_hours_with_its_minutes() {
        let r = rec("a", 1, at(5, 9, 40), at(5, 10, 20));
        assert_eq!(hours_of(&r, &W), [at(5, 9, 0), at(5, 10, 0)]);
        let nine = file_usage_hour(3, at(5, 9, 0), &[&r]).unwrap();
        let ten = file_usage_hour(3, at(5, 10, 0), &[&r]).unwrap();
        assert_eq!((nine.usage_ms, ten.usage_ms), (20 * 60_000, 20 * 60_000));
        assert_eq!((nine.distinct_users, ten.peak_concurrent_runs), (1, 1));
        assert!(file_usage_hour(3, at(5, 11, 0), &[&r]).is_none());
        // A run ending exactly on the hour does not touch the next one.
        assert_eq!(
            hours_of(&rec("b", 1, at(5, 9, 0), at(5, 10, 0)), &W),
            [at(5, 9, 0)]
        );
    }

    #[test]
    fn parallel_runs_of_one_user_count_once_for_users_but_twice_for_runs() {
        let a = rec("a", 1, at(5, 9, 0), at(5, 9, 30));
        let b = rec("b", 1, at(5, 9, 10), at(5, 9, 40));
        let mut c = rec("c", 2, at(5, 9, 30), at(5, 9, 50));
        c.record.device_id = 2;
        c.record.in_ts_session = true;
        let h = file_usage_hour(3, at(5, 9, 0), &[&a, &b, &c]).unwrap();
        assert_eq!(
            (h.distinct_users, h.distinct_devices, h.distinct_ts_users),
            (2, 2, 1)
        );
        assert_eq!(h.usage_ms, (30 + 30 + 20) * 60_000);
        // 9:10–9:30: a and b (one user); 9:30–9:40: b and c (two users); a ends as c starts.
        assert_eq!((h.peak_concurrent_runs, h.peak_concurrent_users), (2, 2));
    }

    #[test]
    fn one_runs_cycle_records_are_one_run_for_the_peak() {
        let first = rec("a", 1, at(5, 9, 0), at(5, 9, 15));
        let mut second = rec("a", 1, at(5, 9, 15), at(5, 9, 30));
        second.record.started = false;
        let h = file_usage_hour(3, at(5, 9, 0), &[&first, &second]).unwrap();
        assert_eq!((h.peak_concurrent_runs, h.usage_ms), (1, 30 * 60_000));
        let months = monthly(&[first, second], &HashMap::from([(7, vec![3])]), &W);
        let jan = months.values().next().unwrap();
        assert_eq!(
            (jan.runs, jan.usage_ms),
            (1, 30 * 60_000),
            "one run, not two"
        );
    }

    #[test]
    fn a_run_over_midnight_at_month_end_splits_by_the_clients_calendar() {
        // 31 January 23:00 → 1 February 01:00 UTC, by a client in UTC.
        let utc = rec("a", 1, at(31, 23, 0), at(31, 23, 0) + Duration::hours(2));
        let split = monthly_of(&[3], &utc, &W);
        let by_month: Vec<(i32, i64, i64)> = split
            .iter()
            .map(|(k, u)| (k.month, u.runs, u.usage_ms))
            .collect();
        assert_eq!(by_month, [(202601, 1, 3_600_000), (202602, 0, 3_600_000)]);
        // The same instant from a client at UTC+2 is already February: all of it.
        let mut east = utc.clone();
        east.record.start_time_offset = 120;
        east.record.end_time_offset = 120;
        let split = monthly_of(&[3], &east, &W);
        assert_eq!(split.len(), 1);
        assert_eq!(
            (split[0].0.month, split[0].1.runs, split[0].1.usage_ms),
            (202602, 1, 7_200_000)
        );
        // Hours are UTC whatever the offset: both clients land in the same hours.
        assert_eq!(hours_of(&utc, &W), hours_of(&east, &W));
    }

    #[test]
    fn monthly_rows_add_up_and_keep_the_last_use() {
        let early = rec("a", 1, at(3, 9, 0), at(3, 10, 0));
        let late = rec("b", 1, at(20, 9, 0), at(20, 9, 30));
        let mut sum = monthly(
            std::slice::from_ref(&early),
            &HashMap::from([(7, vec![3])]),
            &W,
        );
        for (k, u) in monthly(&[late], &HashMap::from([(7, vec![3])]), &W) {
            sum.get_mut(&k).unwrap().add(&u);
        }
        let row = sum.values().next().unwrap();
        assert_eq!(
            (row.runs, row.usage_ms, row.last_used),
            (2, 90 * 60_000, at(20, 9, 30))
        );
        assert!(
            monthly(&[early], &HashMap::new(), &W).is_empty(),
            "no rule, no row"
        );
    }

    #[test]
    fn a_record_is_summarised_over_the_retention_before_its_end_never_its_whole_length() {
        assert_eq!(W.now, Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap());
        // Stored before times were checked: from 1970 to the summaries' clock.
        let since_1970 = rec("old", 1, DateTime::UNIX_EPOCH, W.now);
        let hours = hours_of(&since_1970, &W);
        assert_eq!(hours.len(), 270 * 24, "the hour it ends on is not touched");
        assert_eq!(hours[0], W.now - Duration::days(270));
        let months = monthly_of(&[3], &since_1970, &W);
        assert!(months.len() <= 10, "{} months", months.len());
        assert!(
            months.iter().all(|(_, u)| u.runs == 0),
            "its run began long before"
        );
        // Wholly before 2000, or wholly after the clock's day of grace: nothing.
        let ancient = rec("a", 1, DateTime::UNIX_EPOCH, DateTime::UNIX_EPOCH);
        assert!(hours_of(&ancient, &W).is_empty());
        let ahead = W.now + Duration::days(2);
        let future = rec("f", 1, ahead, ahead + Duration::hours(1));
        assert!(hours_of(&future, &W).is_empty());
        assert!(monthly_of(&[3], &future, &W).is_empty());
        // A period clipped to a range costs the range's hours.
        let (from, to) = (at(5, 0, 0), at(6, 0, 0));
        assert_eq!(hours_in(DateTime::UNIX_EPOCH, W.now, (from, to)).len(), 24);
    }
}
