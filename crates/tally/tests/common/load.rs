//! Agents' load without agents: enrolments and usage batches over the agent API, as the
//! crash and backup cases drive a real server with them.

use std::time::Duration;

use chrono::{DurationRound, Utc};
use serde_json::Value;
use tally_core::wire::v1::{EnrollRequest, EnrollResponse, UsageBatch, UsageRecordV1, UserRef};
use tally_core::FileInfo;

use super::tally_json_at;

/// A valid, plausible record, distinct by `id`: record `n` starts `3n` seconds after midnight
/// `days_ago` days ago (80,000 records span 2.8 days) and runs 5 to 15 minutes.
pub fn record(id: &str, n: usize, program: usize, days_ago: i64) -> UsageRecordV1 {
    let base = Utc::now()
        .duration_trunc(chrono::Duration::days(1))
        .unwrap()
        - chrono::Duration::days(days_ago);
    let start = base + chrono::Duration::seconds(n as i64 * 3);
    UsageRecordV1 {
        meter_data_id: id.to_string(),
        file: FileInfo {
            file_name: format!("prog{program}"),
            original_file_name: format!("prog{program}"),
            version: "1.0".into(),
            product_name: "Crash".into(),
            publisher: "Tally".into(),
            language: 65535,
        },
        user: UserRef {
            account: format!("user{}", n % 37),
            full_name: None,
        },
        start_time: start,
        start_time_offset: 0,
        end_time: start + chrono::Duration::seconds(300 + (n % 11) as i64 * 60),
        end_time_offset: 0,
        started: true,
        still_running: false,
        start_not_captured: false,
        end_not_captured: false,
        in_ts_session: n.is_multiple_of(5),
    }
}

/// Client `c`'s batches: `batches` of `size` records, ids `c{c}-b{b}-r{i}`.
pub fn batches(c: usize, batches: usize, size: usize, days_ago: i64) -> Vec<UsageBatch> {
    (0..batches)
        .map(|b| UsageBatch {
            batch_id: format!("c{c}-b{b}"),
            device_id: None,
            dropped: 0,
            records: (0..size)
                .map(|i| {
                    let n = (c * batches + b) * size + i;
                    record(&format!("c{c}-b{b}-r{i}"), n, n % 5, days_ago)
                })
                .collect(),
        })
        .collect()
}

/// Enrols `n` agents over the agent API; returns their bearer credentials.
pub fn enrol(url: &str, token: &str, n: usize) -> Vec<String> {
    let enrol = tally_json_at(url, token, &["enrollment", "create", "--name", "crash"]);
    let enrol = enrol[0]["token"].as_str().unwrap().to_string();
    let http = reqwest::blocking::Client::new();
    (0..n)
        .map(|a| {
            let request = EnrollRequest::named(&enrol, format!("crash-{a}"));
            let e: EnrollResponse = http
                .post(format!("{url}/api/v1/agent/enroll"))
                .json(&request)
                .send()
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .unwrap();
            e.bearer()
        })
        .collect()
}

/// Uploads one batch; the acknowledgement's body, or why there was none.
pub fn upload(url: &str, creds: &str, batch: &UsageBatch) -> Result<Value, String> {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/agent/usage"))
        .bearer_auth(creds)
        .json(batch)
        .timeout(Duration::from_secs(30))
        .send()
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.text().map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| e.to_string())
}
