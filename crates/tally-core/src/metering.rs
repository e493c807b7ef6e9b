//! Turning what an agent observes — program instances starting, running, ending — into usage
//! records exactly as seed 001 defines them: one record per running instance per reporting
//! cycle, one `MeterDataID` per instance, consecutive non-overlapping periods, `Started` on the
//! first, `StillRunning = false` with the real end on the last, and `StartNotCaptured` /
//! `EndNotCaptured` where the agent did not see the start or the end.
//!
//! The state is serialisable so an agent can persist it and, after a restart, continue its
//! instances under the same ids.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::file::FileInfo;
use crate::wire::v1::{UsageRecordV1, UserRef};

/// The id of one running instance: stable for (device, boot, pid, start), so the same process
/// gets the same id whenever it is looked at, and a reused pid after a reboot or a restart of
/// the program gets a new one.
pub fn meter_data_id(device: &str, boot_id: &str, pid: u32, start_ticks: u64) -> String {
    format!("{device}:{boot_id}:{pid}:{start_ticks}")
}

/// A program instance the agent has decided to meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub meter_data_id: String,
    pub file: FileInfo,
    pub user: UserRef,
    pub in_ts_session: bool,
    /// The real start when `start_captured`; otherwise when the agent first saw it running.
    pub start: DateTime<Utc>,
    pub start_captured: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Open {
    instance: Instance,
    /// Start of the period the next record will cover.
    period_start: DateTime<Utc>,
    /// A record has been produced for this instance already.
    reported: bool,
}

/// The instances being metered and where each one's next record starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meter {
    open: BTreeMap<String, Open>,
}

impl Meter {
    /// Starts metering an instance; an instance already metered is left as it is.
    pub fn start(&mut self, instance: Instance) {
        let id = instance.meter_data_id.clone();
        self.open.entry(id).or_insert_with(|| Open {
            period_start: instance.start,
            instance,
            reported: false,
        });
    }

    pub fn is_open(&self, meter_data_id: &str) -> bool {
        self.open.contains_key(meter_data_id)
    }

    pub fn open_ids(&self) -> impl Iterator<Item = &str> {
        self.open.keys().map(String::as_str)
    }

    /// The end of a reporting cycle: one record per open instance covering its period up to
    /// `now`; the next period starts at `now`.
    ///
    /// An instance already reported up to `now` or later gets no record: an empty period adds
    /// nothing, and a second record ending at the same time would share its key
    /// (`MeterDataID`, `EndTime`) with the first.
    pub fn report(&mut self, now: DateTime<Utc>, utc_offset_minutes: i32) -> Vec<UsageRecordV1> {
        self.open
            .values_mut()
            .filter(|open| !(open.reported && now <= open.period_start))
            .map(|open| {
                let end = now.max(open.period_start);
                let record = record(open, end, utc_offset_minutes, true, false);
                open.period_start = end;
                open.reported = true;
                record
            })
            .collect()
    }

    /// The instance ended at `at` (`end_captured = false` when that time is a bound, not the
    /// observed end, e.g. the agent's last heartbeat before a crash). Produces the final record,
    /// or `None` for an instance not being metered.
    pub fn end(
        &mut self,
        meter_data_id: &str,
        at: DateTime<Utc>,
        end_captured: bool,
        utc_offset_minutes: i32,
    ) -> Option<UsageRecordV1> {
        let open = self.open.remove(meter_data_id)?;
        let mut end = at.max(open.period_start);
        if open.reported && end == open.period_start {
            // The end was observed before the last cycle's record was made (events can arrive
            // late): the final record still needs an end time of its own, one microsecond on.
            end += chrono::Duration::microseconds(1);
        }
        Some(record(&open, end, utc_offset_minutes, false, !end_captured))
    }
}

fn record(
    open: &Open,
    end: DateTime<Utc>,
    offset: i32,
    still_running: bool,
    end_not_captured: bool,
) -> UsageRecordV1 {
    let first = !open.reported;
    let i = &open.instance;
    UsageRecordV1 {
        meter_data_id: i.meter_data_id.clone(),
        file: i.file.clone(),
        user: i.user.clone(),
        start_time: open.period_start,
        start_time_offset: offset,
        end_time: end,
        end_time_offset: offset,
        started: first && i.start_captured,
        still_running,
        start_not_captured: first && !i.start_captured,
        end_not_captured,
        in_ts_session: i.in_ts_session,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn instance(id: &str, start: DateTime<Utc>, captured: bool) -> Instance {
        Instance {
            meter_data_id: id.into(),
            file: FileInfo {
                file_name: "code".into(),
                original_file_name: "code".into(),
                version: "1.0".into(),
                product_name: String::new(),
                publisher: String::new(),
                language: crate::file::ANY_LANGUAGE,
            },
            user: UserRef {
                account: "alice".into(),
                full_name: None,
            },
            in_ts_session: false,
            start,
            start_captured: captured,
        }
    }

    #[test]
    fn a_program_over_three_cycles_gives_three_joined_records() {
        let mut m = Meter::default();
        m.start(instance("a", t(3), true));
        let r1 = m.report(t(15), 60);
        let r2 = m.report(t(30), 60);
        let r3 = m.end("a", t(37), true, 60).unwrap();
        let all = [&r1[0], &r2[0], &r3];
        assert_eq!(
            all.map(|r| (r.start_time, r.end_time)),
            [(t(3), t(15)), (t(15), t(30)), (t(30), t(37))]
        );
        assert_eq!(all.map(|r| r.started), [true, false, false]);
        assert_eq!(all.map(|r| r.still_running), [true, true, false]);
        assert!(all
            .iter()
            .all(|r| !r.start_not_captured && !r.end_not_captured));
        assert!(all
            .iter()
            .all(|r| r.validate(r.end_time).is_ok() && r.start_time_offset == 60));
        assert!(m.end("a", t(40), true, 60).is_none(), "ended once");
        assert!(m.report(t(45), 60).is_empty());
    }

    #[test]
    fn an_end_seen_before_the_last_cycle_still_gets_its_own_key() {
        let mut m = Meter::default();
        m.start(instance("e", t(0), true));
        let cycle = m.report(t(15), 0).remove(0);
        assert!(m.report(t(15), 0).is_empty(), "no empty second record");
        let last = m.end("e", t(14), true, 0).unwrap();
        assert!(last.end_time > cycle.end_time && !last.still_running);
        assert_eq!(last.start_time, cycle.end_time);
    }

    #[test]
    fn a_short_program_gives_one_complete_record() {
        let mut m = Meter::default();
        m.start(instance("b", t(1), true));
        m.start(instance("b", t(2), true));
        let r = m
            .end("b", t(1) + Duration::milliseconds(50), true, 0)
            .unwrap();
        assert!(r.started && !r.still_running);
        assert_eq!(
            (r.start_time, r.end_time),
            (t(1), t(1) + Duration::milliseconds(50))
        );
    }

    #[test]
    fn uncaptured_start_and_end_are_flagged_not_invented() {
        let mut m = Meter::default();
        m.start(instance("c", t(10), false));
        let first = m.report(t(15), 0).remove(0);
        assert!(!first.started && first.start_not_captured);
        let last = m.end("c", t(20), false, 0).unwrap();
        assert!(last.end_not_captured && !last.start_not_captured && !last.still_running);
    }

    #[test]
    fn the_state_survives_serialisation_with_its_ids() {
        let mut m = Meter::default();
        m.start(instance("d", t(0), true));
        m.report(t(15), 0);
        let saved = serde_json::to_string(&m).unwrap();
        let mut restored: Meter = serde_json::from_str(&saved).unwrap();
        let r = restored.end("d", t(20), false, 0).unwrap();
        assert_eq!(
            (r.meter_data_id.as_str(), r.start_time, r.started),
            ("d", t(15), false)
        );
    }

    #[test]
    fn periods_never_overlap_under_any_event_order() {
        // Every interleaving of starts, cycle reports and ends over a small timeline.
        for seed in 0u64..500 {
            let mut state = seed;
            let mut next = || {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 33) as i64
            };
            let mut m = Meter::default();
            let mut out: Vec<UsageRecordV1> = Vec::new();
            for step in 0..40i64 {
                let now = t(step);
                let id = format!("i{}", next() % 4);
                match next() % 3 {
                    0 => m.start(instance(&id, now, next() % 2 == 0)),
                    1 => out.extend(m.report(now, 0)),
                    _ => out.extend(m.end(&id, now, true, 0)),
                }
            }
            for r in &out {
                assert!(r.validate(r.end_time).is_ok(), "seed {seed}: {r:?}");
            }
            let keys: std::collections::HashSet<_> =
                out.iter().map(|r| (&r.meter_data_id, r.end_time)).collect();
            assert_eq!(keys.len(), out.len(), "seed {seed}: a key used twice");
            let mut ids: Vec<&str> = out.iter().map(|r| r.meter_data_id.as_str()).collect();
            ids.dedup();
            for id in ids {
                let mut rs: Vec<&UsageRecordV1> =
                    out.iter().filter(|r| r.meter_data_id == id).collect();
                rs.sort_by_key(|r| (r.start_time, r.end_time, !r.still_running));
                for pair in rs.windows(2) {
                    if pair[0].still_running {
                        assert_eq!(
                            pair[0].end_time, pair[1].start_time,
                            "seed {seed}: periods join"
                        );
                    }
                }
            }
        }
    }
}
