//! Runs: one program execution stitched from its usage records. Seed 001: "the full period of
//! program execution can be found by the earliest StartTime (where Started = 1) and the latest
//! EndTime (where StillRunning = 0)".

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::usage::UsageRecord;

/// One execution of a program, from all the records sharing its `MeterDataID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    pub meter_data_id: String,
    pub device_id: i64,
    pub file_id: i64,
    pub user_id: i64,
    /// The real start when a `Started` record was received, else the earliest period start.
    pub start_time: DateTime<Utc>,
    /// The real end when a final record was received, else the latest report.
    pub end_time: DateTime<Utc>,
    /// A `Started` record has been received, so `start_time` is the program's real start.
    pub start_known: bool,
    /// No final (`StillRunning = false`) record yet: the program was running at `end_time`.
    pub still_running: bool,
    pub start_not_captured: bool,
    pub end_not_captured: bool,
    pub in_ts_session: bool,
    /// Seconds covered by the received records' periods (gaps from missing records excluded).
    pub usage_seconds: i64,
    pub records: u32,
}

/// Groups records by (device, `MeterDataID`) and stitches each group into a run, ordered by
/// start time. Duplicate records (same period) are counted once.
pub fn stitch_runs(records: &[UsageRecord]) -> Vec<Run> {
    let mut groups: BTreeMap<(i64, &str), Vec<&UsageRecord>> = BTreeMap::new();
    for r in records {
        groups
            .entry((r.device_id, &r.meter_data_id))
            .or_default()
            .push(r);
    }
    let mut runs: Vec<Run> = groups.into_values().map(stitch).collect();
    runs.sort_by(|a, b| (a.start_time, &a.meter_data_id).cmp(&(b.start_time, &b.meter_data_id)));
    runs
}

fn stitch(mut group: Vec<&UsageRecord>) -> Run {
    group.sort_by_key(|r| (r.start_time, r.end_time));
    group.dedup_by_key(|r| (r.start_time, r.end_time));
    let first = group[0];
    let started = group
        .iter()
        .filter(|r| r.started)
        .map(|r| r.start_time)
        .min();
    let ended = group
        .iter()
        .filter(|r| !r.still_running)
        .map(|r| r.end_time)
        .max();
    let latest = group
        .iter()
        .map(|r| r.end_time)
        .max()
        .unwrap_or(first.end_time);
    Run {
        meter_data_id: first.meter_data_id.clone(),
        device_id: first.device_id,
        file_id: first.file_id,
        user_id: first.user_id,
        start_time: started.unwrap_or(first.start_time),
        end_time: ended.unwrap_or(latest),
        start_known: started.is_some(),
        still_running: ended.is_none(),
        start_not_captured: group.iter().any(|r| r.start_not_captured),
        end_not_captured: group.iter().any(|r| r.end_not_captured),
        in_ts_session: group.iter().any(|r| r.in_ts_session),
        // Summed exactly, then rounded: truncating each short period would lose time.
        usage_seconds: (group
            .iter()
            .map(|r| (r.end_time - r.start_time).num_milliseconds())
            .sum::<i64>()
            + 500)
            / 1000,
        records: group.len() as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, h, m, 0).unwrap()
    }

    fn rec(
        id: &str,
        s: DateTime<Utc>,
        e: DateTime<Utc>,
        started: bool,
        running: bool,
    ) -> UsageRecord {
        crate::usage::test_stored(crate::NewUsageRecord {
            started,
            still_running: running,
            ..crate::usage::test_record(id, s, e)
        })
    }

    #[test]
    fn three_cycles_make_one_run() {
        let records = [
            rec("a", t(9, 30), t(9, 45), false, false),
            rec("a", t(9, 0), t(9, 15), true, true),
            rec("a", t(9, 15), t(9, 30), false, true),
            rec("a", t(9, 15), t(9, 30), false, true),
        ];
        let runs = stitch_runs(&records);
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert_eq!((r.start_time, r.end_time), (t(9, 0), t(9, 45)));
        assert!(r.start_known && !r.still_running);
        assert_eq!(
            (r.records, r.usage_seconds),
            (3, 45 * 60),
            "the duplicate counts once"
        );
    }

    #[test]
    fn short_periods_are_summed_before_rounding() {
        let ms = |m: i64| t(9, 0) + chrono::Duration::milliseconds(m);
        let records = [
            rec("a", ms(0), ms(800), true, true),
            rec("a", ms(800), ms(1700), false, true),
            rec("a", ms(1700), ms(2600), false, false),
        ];
        assert_eq!(
            stitch_runs(&records)[0].usage_seconds,
            3,
            "0.8 + 0.9 + 0.9 s"
        );
    }

    #[test]
    fn an_open_run_and_a_separate_instance() {
        let records = [
            rec("a", t(9, 0), t(9, 15), false, true),
            rec("b", t(8, 0), t(8, 5), true, false),
        ];
        let runs = stitch_runs(&records);
        assert_eq!(
            runs.iter()
                .map(|r| r.meter_data_id.as_str())
                .collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert!(runs[1].still_running && !runs[1].start_known);
        assert_eq!(runs[1].end_time, t(9, 15));
    }
}
