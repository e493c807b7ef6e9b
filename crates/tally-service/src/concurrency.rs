//! An application's concurrent use over time, for its concurrency chart: the peak of relevant
//! users (or devices) using it in one clock hour, per day or per month. The counts are the
//! compliance engine's own (`tally_core::compliance::concurrent_by_hour`, read from the same
//! usage sessions and the estate as of the day), so the peak over the metering period is the
//! concurrent metrics' requirement. The estate is the kept positions' own
//! (`Service::positions`), so the chart reads only the application's sessions once the day's
//! position is known.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use tally_core::compliance::{concurrent_by_hour, metering_period};
use tally_core::licenses::Metric;

use crate::compliance::{end_of, engine_session};
use crate::Result;

/// How the chart groups the hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// The 31 days up to and including the day asked about.
    Day,
    /// The 12 months up to and including its month.
    Month,
}

impl Per {
    /// How many days or months a chart shows.
    pub fn count(self) -> u32 {
        match self {
            Per::Day => 31,
            Per::Month => 12,
        }
    }
}

/// The peak of one day or month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peak {
    /// `2026-11-30` or `2026-11`.
    pub label: String,
    /// The most users (or devices) in one clock hour; 0 when nobody used it.
    pub peak: i64,
    /// The first hour that reached the peak.
    pub hour: Option<DateTime<Utc>>,
}

/// An application's concurrent use up to a day.
#[derive(Debug, Clone)]
pub struct Concurrency {
    pub application: String,
    pub metric: Metric,
    /// Users are counted, else devices (an application measured in concurrent devices).
    pub by_user: bool,
    /// Oldest first.
    pub peaks: Vec<Peak>,
    /// The metering period that ends with the day, `[start, end)`.
    pub metering: (DateTime<Utc>, DateTime<Utc>),
    /// The peak within it: the requirement of the concurrent metrics.
    pub metering_peak: i64,
}

/// The first instant of each day or month of the chart, and the end of the last.
fn buckets(as_of: NaiveDate, per: Per) -> Vec<DateTime<Utc>> {
    let count = per.count();
    let first = match per {
        Per::Day => as_of - Duration::days(i64::from(count) - 1),
        Per::Month => {
            let month = as_of.with_day(1).expect("day 1 exists");
            month - Months::new(count - 1)
        }
    };
    (0..=count)
        .map(|i| match per {
            Per::Day => first + Duration::days(i64::from(i)),
            Per::Month => first + Months::new(i),
        })
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        .collect()
}

fn label(start: DateTime<Utc>, per: Per) -> String {
    match per {
        Per::Day => start.format("%Y-%m-%d").to_string(),
        Per::Month => start.format("%Y-%m").to_string(),
    }
}

impl crate::Service {
    /// Application `name`'s (any case) concurrent use per day or month up to `as_of`, over
    /// the estate of the kept positions of that day (computed now when there are none); with
    /// `devices` (a parent narrowing to a child's subtree), the use on those devices only, as
    /// `compliance::compute_in` counts their demand.
    pub async fn concurrency(
        &self,
        name: &str,
        as_of: NaiveDate,
        per: Per,
        devices: Option<&HashSet<i64>>,
    ) -> Result<Concurrency> {
        let computed = self.positions.on(self.store(), as_of).await?;
        let application = &computed.application(name)?.application;
        let by_user = application.metric != Metric::ConcurrentDevices;
        let metering = metering_period(application.metering_period, as_of);
        let edges = buckets(as_of, per);
        let chart = (edges[0], edges[edges.len() - 1].min(end_of(as_of)));
        let read = (chart.0.min(metering.0), chart.1.max(metering.1));
        let sessions = self.store().sessions(application.id, read).await?;
        let sessions: Vec<_> = (sessions.into_iter())
            .filter(|s| devices.is_none_or(|d| d.contains(&s.device_id)))
            .map(engine_session)
            .collect();
        let estate = computed.estate();
        let hours = concurrent_by_hour(estate, by_user, &sessions, chart);
        let in_period = concurrent_by_hour(estate, by_user, &sessions, metering);
        Ok(Concurrency {
            application: application.name.clone(),
            metric: application.metric,
            by_user,
            peaks: edges
                .windows(2)
                .map(|w| peak(&hours, (w[0], w[1]), per))
                .collect(),
            metering,
            metering_peak: in_period.values().copied().max().unwrap_or(0),
        })
    }
}

/// The highest count of the hours in `[from, to)`, with the first hour that reached it.
fn peak(hours: &BTreeMap<DateTime<Utc>, i64>, (from, to): Span, per: Per) -> Peak {
    let top =
        hours.range(from..to).fold(
            None,
            |best: Option<(DateTime<Utc>, i64)>, (h, n)| match best {
                Some((_, b)) if b >= *n => best,
                _ => Some((*h, *n)),
            },
        );
    Peak {
        label: label(from, per),
        peak: top.map_or(0, |t| t.1),
        hour: top.map(|t| t.0),
    }
}

type Span = (DateTime<Utc>, DateTime<Utc>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_days_and_months_up_to_the_day() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 15).unwrap();
        let days = buckets(day, Per::Day);
        assert_eq!(days.len(), 32);
        assert_eq!(label(days[0], Per::Day), "2026-02-13");
        assert_eq!(label(days[30], Per::Day), "2026-03-15");
        let months = buckets(day, Per::Month);
        assert_eq!(label(months[0], Per::Month), "2025-04");
        assert_eq!(label(months[11], Per::Month), "2026-03");
        assert_eq!(label(months[12], Per::Month), "2026-04");
    }
}
