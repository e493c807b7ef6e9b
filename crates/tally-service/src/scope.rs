//! A parent's reads narrowed to one site and the sites below it (`--site CODE`): which sites
//! those are, which devices they hold, the positions over those devices, and the hourly summary
//! over those devices alone.
//!
//! A parent holds its whole subtree's raw records, summaries and inventory, each device with
//! its origin site, so narrowing by site is narrowing by device. Monthly rows are per device and
//! narrow in the query; the stored hourly rows are the whole subtree's (distinct users and
//! peaks cannot be split by site afterwards), so a site's hours are recomputed from the raw
//! records of its devices, the same way the summariser computes them, one day at a time.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tally_api::{AppDetail, AppPosition};
use tally_core::summary::{self, FileUsageHour};
use tally_core::{SiteCode, UsageRecord};
use tally_store::prelude::*;

use crate::summaries::{hours_of_range, released_before, RulesOfFile};
use crate::{Result, Service, ServiceError};

/// Days one site-narrowed hourly read may cover (the concurrency report's default period fits):
/// it reads every raw record of the period, a day at a time.
pub const MAX_SITE_HOURS_DAYS: i64 = 92;

/// `code` and every site below it, as this site knows them; unknown codes are refused.
pub async fn subtree(service: &Service, code: &SiteCode) -> Result<Vec<SiteCode>> {
    let sites = service.store().sites().await?;
    if !sites.iter().any(|s| &s.code == code) {
        return Err(ServiceError::NotFound(format!(
            "no site {code} here; see tally sites"
        )));
    }
    Ok(tally_core::hierarchy::subtree(code, &sites))
}

/// [`subtree`] of a code as a person typed it (any case); `None` for none given (the whole
/// subtree this site holds).
pub async fn subtree_of(service: &Service, code: Option<&str>) -> Result<Option<Vec<SiteCode>>> {
    let Some(code) = code else { return Ok(None) };
    let code = SiteCode::parse(code).map_err(|e| ServiceError::Invalid(format!("site: {e}")))?;
    Ok(Some(subtree(service, &code).await?))
}

/// Every application's position on `as_of` (or only the one named `only`): over the devices
/// of `sites` when given ([`Service::positions_in`]), else over the whole subtree
/// ([`Service::positions`]); kept either way.
pub async fn positions(
    service: &Service,
    as_of: NaiveDate,
    only: Option<&str>,
    sites: Option<&[SiteCode]>,
) -> Result<Vec<AppPosition>> {
    match sites {
        Some(sites) => service.positions_in(as_of, only, sites).await,
        None => service.positions(as_of, only).await,
    }
}

/// Application `app`'s position on `as_of` in detail, a page of its consumers: over the
/// devices of `sites` when given ([`Service::position_detail_in`]), else over the whole
/// subtree ([`Service::position_detail`]); kept either way.
pub async fn position_detail(
    service: &Service,
    as_of: NaiveDate,
    app: &str,
    page: (i64, i64),
    sites: Option<&[SiteCode]>,
) -> Result<AppDetail> {
    match sites {
        Some(sites) => service.position_detail_in(as_of, app, page, sites).await,
        None => service.position_detail(as_of, app, page).await,
    }
}

/// The ids of the devices of `sites`.
pub async fn devices_of(store: &dyn Store, sites: &[SiteCode]) -> Result<HashSet<i64>> {
    Ok((store.compliance_devices().await?)
        .into_iter()
        .filter(|d| sites.contains(&d.site_code))
        .map(|d| d.id)
        .collect())
}

/// The first midnight from which a site's hours can be recomputed: raw records that ended
/// before the ageing task's newest cut-off may be gone, so the day it falls in is not whole.
pub async fn first_whole_day(store: &dyn Store) -> Result<DateTime<Utc>> {
    let cutoff = released_before(store).await?;
    if cutoff == DateTime::<Utc>::MIN_UTC {
        return Ok(cutoff);
    }
    let midnight = cutoff.date_naive().and_hms_opt(0, 0, 0).expect("midnight");
    let midnight = midnight.and_utc();
    Ok(match midnight == cutoff {
        true => midnight,
        false => midnight + Duration::days(1),
    })
}

/// The hourly rows of `rule` (or every rule) in `[from, to)` (midnights) over the devices of
/// `sites` only, recomputed from their raw records. Refused when the period is longer than
/// [`MAX_SITE_HOURS_DAYS`] or starts before [`first_whole_day`].
pub async fn hours(
    service: &Service,
    rule: Option<i64>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    sites: &[SiteCode],
) -> Result<Vec<FileUsageHour>> {
    let store = service.store();
    check_period(store, (from, to)).await?;
    let file_rules = service.file_rules();
    file_rules.refresh(store).await?;
    let mut rows = Vec::new();
    let mut day = from;
    while day < to {
        let next = day + Duration::days(1);
        let records = store.usage_overlapping_in(day, next, sites).await?;
        let rules_of_file = file_rules.of_records(store, &records).await?;
        let keys = keys_of(&records, &rules_of_file, rule, (day, next.min(to)));
        rows.extend(hours_of_range(&keys, &records, &rules_of_file, (day, next)));
        day = next;
    }
    Ok(rows)
}

async fn check_period(store: &dyn Store, (from, to): (DateTime<Utc>, DateTime<Utc>)) -> Result<()> {
    if to - from > Duration::days(MAX_SITE_HOURS_DAYS) {
        return Err(ServiceError::Invalid(format!(
            "from: a site's hourly figures are recomputed from its raw records, at most \
             {MAX_SITE_HOURS_DAYS} days at a time; give a later from or an earlier to"
        )));
    }
    let first = first_whole_day(store).await?;
    if from < first {
        return Err(ServiceError::Invalid(format!(
            "from: raw records before {} may have been aged out (delete_aged_usage), so hours \
             before then cannot be narrowed to a site; start from {}, leave out site, or keep \
             raw records longer from now on (tally tasks set delete_aged_usage --age-days N, \
             up to 255)",
            first.date_naive(),
            first.date_naive(),
        )));
    }
    Ok(())
}

/// Every (hour, rule) the records touch within `window`, `rule` alone when given.
fn keys_of(
    records: &[UsageRecord],
    rules_of_file: &RulesOfFile,
    rule: Option<i64>,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Vec<(DateTime<Utc>, i64)> {
    let mut keys = BTreeSet::new();
    for r in records {
        let rules = rules_of_file.get(&r.file_id).into_iter().flatten();
        for &id in rules.filter(|&&id| rule.is_none_or(|want| want == id)) {
            for hour in summary::hours_in(r.start_time, r.end_time, window) {
                keys.insert((hour, id));
            }
        }
    }
    keys.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tally_core::tasks::{Task, TaskState};
    use tally_store::TaskPart;

    use super::*;
    use crate::summaries::tests::store_with;

    /// A service over records of `periods` (by the one device of S01), and the midnight three
    /// days ago they are counted from: recent enough for the summariser's window.
    async fn service_with(
        periods: impl Fn(DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> (tempfile::TempDir, Service, DateTime<Utc>) {
        let day = (Utc::now() - Duration::days(3)).date_naive();
        let day = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let (dir, store) = store_with(&periods(day)).await;
        let site = SiteCode::parse("S01").unwrap();
        (dir, Service::new(Arc::new(store), site), day)
    }

    #[tokio::test]
    async fn a_sites_hours_are_the_summarisers_over_the_same_devices() {
        let at = |day: DateTime<Utc>, d: i64, h: i64, m: i64| {
            day + Duration::days(d) + Duration::hours(h) + Duration::minutes(m)
        };
        let (_dir, service, day) = service_with(|day| {
            vec![
                (at(day, 0, 9, 10), at(day, 0, 9, 40)),
                (at(day, 0, 9, 20), at(day, 0, 11, 0)),
                (at(day, 0, 23, 30), at(day, 1, 1, 15)), // over midnight
                (at(day, 1, 10, 0), at(day, 1, 10, 0)),  // an instant
            ]
        })
        .await;
        crate::maintenance::run(&service, Task::SummarizeFileUsage)
            .await
            .unwrap();
        let window = (day, day + Duration::days(2));
        let stored = (service.store())
            .file_usage_hours(None, window.0, window.1)
            .await
            .unwrap();
        assert_eq!(stored.len(), 6, "{stored:?}");
        let s01 = [SiteCode::parse("S01").unwrap()];
        assert_eq!(hours(&service, None, window, &s01).await.unwrap(), stored);
        let rule = stored[0].rule_id;
        let one_day = (day, day + Duration::days(1));
        let first_day: Vec<_> = (stored.iter().filter(|h| h.hour < one_day.1).cloned()).collect();
        let got = hours(&service, Some(rule), one_day, &s01).await.unwrap();
        assert_eq!(got, first_day);
        assert!(hours(&service, Some(rule + 1), window, &s01)
            .await
            .unwrap()
            .is_empty());
        let elsewhere = [SiteCode::parse("X99").unwrap()];
        assert!(hours(&service, None, window, &elsewhere)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn periods_too_long_or_reaching_aged_out_records_are_refused() {
        let (_dir, service, day) = service_with(|_| Vec::new()).await;
        let s01 = [SiteCode::parse("S01").unwrap()];
        let long = (
            day - Duration::days(MAX_SITE_HOURS_DAYS),
            day + Duration::days(1),
        );
        let err = hours(&service, None, long, &s01).await.unwrap_err();
        assert!(err.to_string().contains("92 days"), "{err}");
        // A run of the ageing task keeps the cut-off it used (now less its 5 days) as its
        // watermark.
        let ran = crate::maintenance::run(&service, Task::DeleteAgedUsage)
            .await
            .unwrap();
        let used = DateTime::from_timestamp_micros(ran.watermark).unwrap();
        let expected = Utc::now() - Duration::days(5);
        assert!((expected - used).num_seconds().abs() < 60, "{used}");
        let next_midnight = used.date_naive().succ_opt().unwrap();
        let next_midnight = next_midnight.and_hms_opt(0, 0, 0).unwrap().and_utc();
        assert_eq!(
            first_whole_day(service.store()).await.unwrap(),
            next_midnight
        );
        // The ageing task's newest cut-off, 06:00 thirty days back: that day is not whole, so
        // hours are refused before the next midnight, which the refusal names.
        let cutoff = day - Duration::days(30) + Duration::hours(6);
        let aged = TaskState {
            last_run_at: Some(day),
            age_days: Some(30),
            watermark: cutoff.timestamp_micros(),
            ..Task::DeleteAgedUsage.defaults()
        };
        (service.store().put_task(&aged, TaskPart::Outcome, None))
            .await
            .unwrap();
        let first = day - Duration::days(29);
        assert_eq!(first_whole_day(service.store()).await.unwrap(), first);
        let before = (first - Duration::days(1), first + Duration::days(1));
        let err = hours(&service, None, before, &s01).await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains("aged out"), "{message}");
        assert!(
            message.contains(&first.date_naive().to_string()),
            "{message}"
        );
        let after = (first, first + Duration::days(1));
        assert!(hours(&service, None, after, &s01).await.is_ok());
        // Raising the age later does not bring deleted records back: the cut-off stands.
        let raised = TaskState {
            age_days: Some(255),
            ..aged.clone()
        };
        (service.store().put_task(&raised, TaskPart::Settings, None))
            .await
            .unwrap();
        assert_eq!(first_whole_day(service.store()).await.unwrap(), first);
    }
}
