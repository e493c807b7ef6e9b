//! Usage sessions from the agent's metering. The compliance metrics that count use (users,
//! devices, concurrent users and devices) read usage sessions; imported ones come from files,
//! and these come from the raw usage records before the records age away. Each run of a program
//! that an application's metering rule meters becomes one session of that application, from
//! its first report's start to its last report's end, whatever the number of reports.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::UsageRecord;

/// One stored usage session of an application (imported, or made from the agent's runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSession {
    pub application_id: i64,
    pub device_id: i64,
    pub user_id: i64,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
}

/// One run of a metered program, as a session of one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSession {
    pub application_id: i64,
    /// The run's `MeterDataID`: what keeps a run one session across reports and task runs.
    pub meter_data_id: String,
    pub device_id: i64,
    pub user_id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Sessions keyed by application and run, growing as records arrive.
pub type RunSessions = HashMap<(i64, String), RunSession>;

/// Adds `records` to `sessions`; `apps_of_file` says which applications each metered file's
/// usage belongs to (through their metering rules). Records of files no application claims
/// are skipped.
pub fn add_records(
    sessions: &mut RunSessions,
    records: &[UsageRecord],
    apps_of_file: &HashMap<i64, Vec<i64>>,
) {
    for record in records {
        let Some(apps) = apps_of_file.get(&record.file_id) else {
            continue;
        };
        for &application_id in apps {
            let key = (application_id, record.meter_data_id.clone());
            sessions
                .entry(key)
                .and_modify(|s| {
                    s.start = s.start.min(record.start_time);
                    s.end = s.end.max(record.end_time);
                })
                .or_insert_with(|| RunSession {
                    application_id,
                    meter_data_id: record.meter_data_id.clone(),
                    device_id: record.device_id,
                    user_id: record.user_id,
                    start: record.start_time,
                    end: record.end_time,
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
    }

    fn record(id: &str, file: i64, (from, to): ((u32, u32), (u32, u32))) -> UsageRecord {
        crate::usage::test_stored(crate::NewUsageRecord {
            device_id: 7,
            file_id: file,
            user_id: 9,
            start_time_offset: 60,
            end_time_offset: 60,
            ..crate::usage::test_record(id, at(from.0, from.1), at(to.0, to.1))
        })
    }

    #[test]
    fn a_run_reported_in_several_cycles_is_one_session_of_each_application() {
        // File 1 is metered for applications 10 and 11; file 2 for nobody. Run "a" is
        // reported twice (09:00–10:00 still running, 10:00–10:20), in either order.
        let apps = HashMap::from([(1, vec![10, 11])]);
        let mut sessions = RunSessions::new();
        add_records(
            &mut sessions,
            &[
                record("a", 1, ((10, 0), (10, 20))),
                record("b", 2, ((8, 0), (9, 0))),
            ],
            &apps,
        );
        add_records(&mut sessions, &[record("a", 1, ((9, 0), (10, 0)))], &apps);
        assert_eq!(sessions.len(), 2);
        for app in [10, 11] {
            let s = &sessions[&(app, "a".to_string())];
            assert_eq!(
                (s.start, s.end, s.device_id, s.user_id),
                (at(9, 0), at(10, 20), 7, 9)
            );
        }
    }
}
