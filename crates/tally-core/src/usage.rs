//! Usage records: one report on one running program instance (seed 001, `SMS_MeterData`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ValidationError;

/// One report on one running program instance, with its device, file and user resolved to ids:
/// every property of `SMS_MeterData` but the three only the server knows (row id, `TimeSerial`,
/// `Released`). This is what an agent reported and what the store writes; the wire record
/// becomes one in one place, [`crate::wire::v1::UsageRecordV1::to_record`].
///
/// A program that runs across several reporting cycles produces several records with the same
/// `meter_data_id`; their periods are consecutive and do not overlap. The full run is found
/// from the earliest `start_time` where `started` and the latest `end_time` where not
/// `still_running`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewUsageRecord {
    /// `MeterDataID`: unique id of one running instance of a program on one computer; every
    /// report on that instance carries the same id.
    pub meter_data_id: String,
    /// `ResourceID`: the computer that ran the program.
    pub device_id: i64,
    /// `FileID`: the file that was metered.
    pub file_id: i64,
    /// `MeteredUserID`: the account the program ran under.
    pub user_id: i64,
    /// `StartTime` (UTC): the real start when `started`; otherwise the `end_time` of the
    /// previous report on this instance.
    pub start_time: DateTime<Utc>,
    /// `StartTimeOffset`: the client's offset from UTC, in minutes, when the data was reported.
    /// Signed here, because clients west of Greenwich have negative offsets.
    pub start_time_offset: i32,
    /// `EndTime` (UTC): the real end when not `still_running`; otherwise the time of the report.
    pub end_time: DateTime<Utc>,
    /// `EndTimeOffset`: the client's offset from UTC, in minutes, when the data was reported.
    pub end_time_offset: i32,
    /// `Started`: this is the first report on the instance, so `start_time` is its real start.
    pub started: bool,
    /// `StillRunning`: the program was still running when reported.
    pub still_running: bool,
    /// `StartNotCaptured`: the agent could not capture the real start time.
    pub start_not_captured: bool,
    /// `EndNotCaptured`: the agent could not capture the real end time.
    pub end_not_captured: bool,
    /// `InTSSession`: the program ran in a remote session (terminal server, RDP, SSH) rather than
    /// at the console.
    pub in_ts_session: bool,
}

/// A stored usage record, with every property of `SMS_MeterData`: the record as reported
/// (`NewUsageRecord`, its fields inline in this object) and what the server gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageRecord {
    /// Tally's row id, for paging through records; not part of `SMS_MeterData`.
    pub id: i64,
    /// The record as reported.
    #[serde(flatten)]
    pub record: NewUsageRecord,
    /// `TimeSerial`: a rough ordering of when the server processed the record; records with a
    /// smaller value were processed earlier. Not unique: one ingest batch shares one value.
    pub time_serial: i64,
    /// `Released`: the record has been summarised and may be deleted by the "delete aged
    /// software metering data" task.
    pub released: bool,
}

/// One model, not two copies of thirteen fields: a stored record holds the reported one whole,
/// so a field added to the report is added once. Through `Deref` readers still write
/// `r.start_time`; `#[serde(flatten)]` keeps the JSON one flat object with the same keys in the
/// same order as before.
impl std::ops::Deref for UsageRecord {
    type Target = NewUsageRecord;

    fn deref(&self) -> &NewUsageRecord {
        &self.record
    }
}

/// What an insert of usage records did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Rows newly written.
    pub stored: u64,
    /// Rows that were already present (same device, `MeterDataID` and end time) and left as is.
    pub duplicates: u64,
    /// The `TimeSerial` given to the rows written.
    pub time_serial: i64,
}

/// A usage batch's result, as first stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub stored: u64,
    pub duplicates: u64,
    /// This request was a replay of a batch already received.
    pub replayed: bool,
}

impl NewUsageRecord {
    /// One whole run in one report: started and ended within it, at UTC, both ends seen. What
    /// generated usage (benches, tests, imports of sessions) is made of.
    pub fn whole_run(
        meter_data_id: impl Into<String>,
        (device_id, file_id, user_id): (i64, i64, i64),
        start_time: DateTime<Utc>,
        end_time: DateTime<Utc>,
    ) -> Self {
        NewUsageRecord {
            meter_data_id: meter_data_id.into(),
            device_id,
            file_id,
            user_id,
            start_time,
            start_time_offset: 0,
            end_time,
            end_time_offset: 0,
            started: true,
            still_running: false,
            start_not_captured: false,
            end_not_captured: false,
            in_ts_session: false,
        }
    }
}

/// A record of one whole run for unit tests: started and ended in this one report, at UTC, on
/// device 1, file 2, user 3. Tests set the fields they are about with `..test_record(…)`, so
/// each one shows only what matters to it.
#[cfg(test)]
pub(crate) fn test_record(
    meter_data_id: &str,
    start_time: DateTime<Utc>,
    end_time: DateTime<Utc>,
) -> NewUsageRecord {
    NewUsageRecord::whole_run(meter_data_id, (1, 2, 3), start_time, end_time)
}

/// `record` as stored with id 0, `TimeSerial` 1, not released: what unit tests of the
/// summaries and sessions read.
#[cfg(test)]
pub(crate) fn test_stored(record: NewUsageRecord) -> UsageRecord {
    UsageRecord {
        id: 0,
        record,
        time_serial: 1,
        released: false,
    }
}

/// Flags and times that any record must satisfy, whatever its source.
pub fn check_period(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    started: bool,
    start_not_captured: bool,
) -> Result<(), ValidationError> {
    if end < start {
        return Err(ValidationError::new(
            "end_time",
            format!("end_time {end} is before start_time {start}; periods must be ordered"),
        ));
    }
    if started && start_not_captured {
        return Err(ValidationError::new(
            "started",
            "a record cannot be both the captured start (started) and start_not_captured",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The API's and the CLI's JSON did not change when the stored record came to hold the
    /// reported one: one flat object, every `SMS_MeterData` key in the order it always had.
    #[test]
    fn a_stored_record_is_one_flat_object_and_reads_back() {
        let a = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        let stored = test_stored(test_record("m1", a, a));
        let text = serde_json::to_string(&stored).unwrap();
        let keys = [
            "id",
            "meter_data_id",
            "device_id",
            "file_id",
            "user_id",
            "start_time",
            "start_time_offset",
            "end_time",
            "end_time_offset",
            "started",
            "still_running",
            "start_not_captured",
            "end_not_captured",
            "in_ts_session",
            "time_serial",
            "released",
        ];
        let at: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).expect(k))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json.as_object().unwrap().len(), keys.len(), "{text}");
        let back: UsageRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, stored);
    }

    #[test]
    fn periods_must_be_ordered_and_flags_consistent() {
        let a = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        let b = Utc.with_ymd_and_hms(2026, 1, 1, 10, 15, 0).unwrap();
        assert!(check_period(a, b, true, false).is_ok());
        assert!(check_period(a, a, false, false).is_ok());
        assert_eq!(
            check_period(b, a, true, false).unwrap_err().field,
            "end_time"
        );
        assert_eq!(check_period(a, b, true, true).unwrap_err().field, "started");
    }
}
