//! An application's use over time, for its page: hours and runs by month. Metered use comes
//! from the monthly summaries of the metering rules its recognition names; an application no
//! rule meters is read from its usage sessions (imported ones), so its page still shows
//! something true.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use tally_core::licenses::AppRecord;
use tally_core::sessions::UsageSession;
use tally_core::SiteCode;
use tally_store::Store;

use crate::Result;

/// One month's use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthUse {
    /// `yyyymm`.
    pub month: i32,
    pub runs: i64,
    pub usage_ms: i64,
}

/// Where the figures came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageSource {
    /// The monthly summaries of the metering rules the recognition names.
    MeteringRules,
    /// The application's usage sessions (no rule named, or none found).
    Sessions,
}

/// `yyyymm` of `day`, and of `months - 1` months before it.
fn month_range(day: NaiveDate, months: u32) -> (i32, i32) {
    let index = day.year() * 12 + day.month0() as i32;
    let first = index - (months.max(1) as i32 - 1);
    (
        (first / 12) * 100 + first % 12 + 1,
        day.year() * 100 + day.month() as i32,
    )
}

/// Every month of the range, in order, with no use where none was recorded.
fn filled(range: (i32, i32), found: BTreeMap<i32, MonthUse>) -> Vec<MonthUse> {
    let mut out = Vec::new();
    let mut month = range.0;
    while month <= range.1 {
        let empty = MonthUse {
            month,
            runs: 0,
            usage_ms: 0,
        };
        out.push(found.get(&month).cloned().unwrap_or(empty));
        month = if month % 100 == 12 {
            month + 89
        } else {
            month + 1
        };
    }
    out
}

/// `app`'s use in the `months` months up to and including the month of `until`; with `sites`
/// (a parent narrowing to a child's subtree), on the devices of those sites only.
pub async fn by_month(
    store: &dyn Store,
    app: &AppRecord,
    until: NaiveDate,
    months: u32,
    sites: Option<&[SiteCode]>,
) -> Result<(UsageSource, Vec<MonthUse>)> {
    let range = month_range(until, months);
    let rules = store.rules().await?;
    let named: Vec<i64> = (app.recognition.iter())
        .filter(|r| !r.metering_rule.is_empty())
        .filter_map(|r| {
            let rule = rules
                .iter()
                .find(|m| m.spec.name.eq_ignore_ascii_case(&r.metering_rule));
            rule.map(|m| m.id)
        })
        .collect();
    let mut found: BTreeMap<i32, MonthUse> = BTreeMap::new();
    if !named.is_empty() {
        for m in store.monthly_totals(range, sites).await? {
            if named.contains(&m.rule_id) {
                let entry = found.entry(m.month).or_insert(MonthUse {
                    month: m.month,
                    runs: 0,
                    usage_ms: 0,
                });
                entry.runs += m.runs;
                entry.usage_ms += m.usage_ms;
            }
        }
        return Ok((UsageSource::MeteringRules, filled(range, found)));
    }
    let from = NaiveDate::from_ymd_opt(range.0 / 100, (range.0 % 100) as u32, 1)
        .unwrap_or(until)
        .and_hms_opt(0, 0, 0)
        .map(|t| Utc.from_utc_datetime(&t))
        .unwrap_or_default();
    let to = crate::compliance::end_of(until);
    let devices = match sites {
        Some(sites) => Some(crate::scope::devices_of(store, sites).await?),
        None => None,
    };
    let sessions = store.sessions(app.application.id, (from, to)).await?;
    let on_devices = |s: &UsageSession| devices.as_ref().is_none_or(|d| d.contains(&s.device_id));
    for s in sessions.into_iter().filter(on_devices) {
        let month = s.start_time.year() * 100 + s.start_time.month() as i32;
        let entry = found.entry(month).or_insert(MonthUse {
            month,
            runs: 0,
            usage_ms: 0,
        });
        entry.runs += 1;
        entry.usage_ms += (s.end_time - s.start_time).num_milliseconds().max(0);
    }
    Ok((UsageSource::Sessions, filled(range, found)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_run_across_years() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 15).unwrap();
        assert_eq!(month_range(day, 12), (202504, 202603));
        assert_eq!(month_range(day, 1), (202603, 202603));
        let months: Vec<i32> = filled((202511, 202602), BTreeMap::new())
            .iter()
            .map(|m| m.month)
            .collect();
        assert_eq!(months, [202511, 202512, 202601, 202602]);
    }
}
