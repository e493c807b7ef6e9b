//! Raw usage records and the program runs stitched from them, filtered as the read API and the
//! CLI ask: the rule filter comes from the file → rule mapping, not a scan of every file, and
//! runs are stitched here so no caller pages records and stitches them itself.

use chrono::{DateTime, Utc};
use tally_core::runs::{stitch_runs, Run};
use tally_core::UsageRecord;
use tally_store::{Page, UsageQuery};

use crate::{Result, Service, ServiceError};

/// Most raw records one runs request stitches; narrow with `since`, `rule` or `device_id`.
pub const MAX_RECORDS_PER_RUNS_QUERY: usize = 200_000;

/// Records read per query while gathering a runs answer.
const RECORDS_PAGE: i64 = 1000;

/// Which records to read.
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    /// Only records of files the rule of this name (any case) meters.
    pub rule: Option<String>,
    /// Only records ending at or after this time.
    pub since: Option<DateTime<Utc>>,
    pub device_id: Option<i64>,
    pub user_id: Option<i64>,
    /// Only devices of this site and the sites below it.
    pub site: Option<tally_core::SiteCode>,
}

impl UsageFilter {
    async fn query(&self, service: &Service, page: Page) -> Result<UsageQuery> {
        let file_ids = match &self.rule {
            Some(name) => Some(
                service
                    .file_rules()
                    .files_metered_by(service.store(), name)
                    .await?,
            ),
            None => None,
        };
        let sites = match &self.site {
            Some(code) => Some(crate::scope::subtree(service, code).await?),
            None => None,
        };
        Ok(UsageQuery {
            sites,
            device_id: self.device_id,
            user_id: self.user_id,
            file_ids,
            since: self.since,
            page,
        })
    }
}

/// The records `filter` selects with ids above `page.after`, at most `page.limit`, by id.
pub async fn records(
    service: &Service,
    filter: &UsageFilter,
    page: Page,
) -> Result<Vec<UsageRecord>> {
    let query = filter.query(service, page).await?;
    Ok(service.store().usage_records(&query).await?)
}

/// The runs stitched from every record `filter` selects, by start time, `skip` of them left
/// out and at most `limit` given. A run needs every record of its instance, so all matching
/// records are read (at most [`MAX_RECORDS_PER_RUNS_QUERY`]) before paging.
pub async fn runs(
    service: &Service,
    filter: &UsageFilter,
    skip: usize,
    limit: usize,
) -> Result<Vec<Run>> {
    let first = Page {
        after: 0,
        limit: RECORDS_PAGE,
    };
    let mut query = filter.query(service, first).await?;
    let mut records = Vec::new();
    loop {
        let batch = service.store().usage_records(&query).await?;
        let Some(last) = batch.last() else { break };
        query.page.after = last.id;
        records.extend(batch);
        if records.len() > MAX_RECORDS_PER_RUNS_QUERY {
            return Err(ServiceError::Invalid(format!(
                "more than {MAX_RECORDS_PER_RUNS_QUERY} records match; narrow with since, rule, device_id or user_id"
            )));
        }
    }
    Ok(stitch_runs(&records)
        .into_iter()
        .skip(skip)
        .take(limit)
        .collect())
}
