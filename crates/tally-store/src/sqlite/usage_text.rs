//! Raw usage records read as one text per page. sqlx's SQLite driver hands every row from its
//! worker thread to the caller on its own and decodes each column by name: about 12 µs a
//! record, which made a plain read of 11 million records take 138 s (BENCHMARKS.md,
//! "Summarisation"). SQLite builds one `group_concat` text per page here instead, and it is
//! parsed below: the driver then moves one value per page, not 17 per record.

use chrono::{DateTime, NaiveDateTime, Utc};
use tally_core::{NewUsageRecord, UsageRecord};

use super::{corrupt_unless, SqliteStore};
use crate::usage::UsageFilter;
use crate::Result;

/// Records per text: a page is a few MB, far below SQLite's limit on a string's length.
const PAGE: i64 = 20_000;

/// One record as text: the numbers, the six flags as one number, the two times, then the
/// `MeterDataID` behind its length in bytes (it may hold any character, a comma included).
/// One `printf` builds all but the id: a chain of `||` builds a new string per step and took
/// half as long again (BENCHMARKS.md, "Summarisation"). `%s` prints each value as `||` would,
/// so a damaged number is still seen as one by the parser below; the id is appended with `||`,
/// which keeps every byte of it (`printf` would stop at a NUL).
const RECORD: &str = "printf('%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,',
    id, device_id, file_id, user_id, start_time_offset, end_time_offset, time_serial,
    (started <> 0) + 2 * (still_running <> 0) + 4 * (start_not_captured <> 0)
        + 8 * (end_not_captured <> 0) + 16 * (in_ts_session <> 0) + 32 * (released <> 0),
    start_time, end_time, length(CAST(meter_data_id AS BLOB))) || meter_data_id";

impl SqliteStore {
    /// The records `filter` selects, in its order, read a text page at a time.
    pub(crate) async fn usage_as_text(&self, filter: &UsageFilter) -> Result<Vec<UsageRecord>> {
        match *filter {
            UsageFilter::Serial {
                lowest,
                upto,
                after,
                limit,
            } => self.serial_pages(lowest, upto, after, limit).await,
            UsageFilter::Overlapping {
                from,
                to,
                latest_end,
            } => self.overlapping_pages(from, to, latest_end).await,
        }
    }

    async fn serial_pages(
        &self,
        lowest: i64,
        upto: i64,
        mut after: (i64, i64),
        limit: i64,
    ) -> Result<Vec<UsageRecord>> {
        let sql = format!(
            "SELECT group_concat({RECORD}, char(10)) FROM (SELECT * FROM usage_records
             WHERE time_serial >= $1 AND time_serial <= $2 AND (time_serial, id) > ($3, $4)
             ORDER BY time_serial, id LIMIT $5)"
        );
        let mut out = Vec::new();
        while (out.len() as i64) < limit {
            let want = (limit - out.len() as i64).min(PAGE);
            let text: Option<String> = sqlx::query_scalar(&sql)
                .bind(lowest.max(after.0))
                .bind(upto)
                .bind(after.0)
                .bind(after.1)
                .bind(want)
                .fetch_one(&self.pool)
                .await?;
            let mut page = parse(text.as_deref().unwrap_or_default())?;
            page.sort_unstable_by_key(|r| (r.time_serial, r.id));
            let Some(last) = page.last() else { break };
            after = (last.time_serial, last.id);
            let full = page.len() as i64 == want;
            out.append(&mut page);
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// Pages by `(end_time, id)`, the end-time index's order, with one lower bound for the
    /// planner (see `usage_by_serial`). The next page starts after the last record's stored
    /// end-time text, so it never depends on how a time is written back.
    async fn overlapping_pages(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        latest_end: DateTime<Utc>,
    ) -> Result<Vec<UsageRecord>> {
        let sql = format!(
            "SELECT group_concat({RECORD}, char(10)) FROM (SELECT * FROM usage_records
             WHERE end_time >= $1 AND end_time <= $2 AND start_time < $3
               AND (end_time, id) > ($4, $5)
             ORDER BY end_time, id LIMIT $6)"
        );
        let encode = |t: DateTime<Utc>| {
            tally_core::to_micros(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
        };
        let from = encode(from);
        let mut after: (String, i64) = (String::new(), 0);
        let mut out = Vec::new();
        loop {
            let text: Option<String> = sqlx::query_scalar(&sql)
                .bind(if after.0 > from { &after.0 } else { &from })
                .bind(encode(latest_end))
                .bind(encode(to))
                .bind(&after.0)
                .bind(after.1)
                .bind(PAGE)
                .fetch_one(&self.pool)
                .await?;
            let mut last: Option<(&str, i64)> = None;
            let text = text.unwrap_or_default();
            let page = parse_with(&text, |r, end| {
                last = last.max(Some((end, r.id)));
            })?;
            let full = page.len() as i64 == PAGE;
            out.extend(page);
            match last {
                Some((end, id)) if full => after = (end.to_string(), id),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// The records of a text [`RECORD`]s make, joined by newlines.
fn parse(text: &str) -> Result<Vec<UsageRecord>> {
    parse_with(text, |_, _| {})
}

/// [`parse`], showing `seen` each record with its end time as stored.
fn parse_with<'t>(
    mut text: &'t str,
    mut seen: impl FnMut(&UsageRecord, &'t str),
) -> Result<Vec<UsageRecord>> {
    let mut out = Vec::new();
    while !text.is_empty() {
        let (record, end, rest) = parse_one(text)?;
        seen(&record, end);
        out.push(record);
        text = rest.strip_prefix('\n').unwrap_or(rest);
    }
    Ok(out)
}

/// One record from the front of `text`, its end time as stored, and the text after it.
fn parse_one(text: &str) -> Result<(UsageRecord, &str, &str)> {
    let mut fields = text.splitn(12, ',');
    let mut next = || fields.next().unwrap_or_default();
    let int = |column: &'static str, v: &str| corrupt_unless(column, v, v.parse::<i64>().ok());
    let small = |column: &'static str, v: &str| corrupt_unless(column, v, v.parse::<i32>().ok());
    let id = int("usage_records.id", next())?;
    let device_id = int("usage_records.device_id", next())?;
    let file_id = int("usage_records.file_id", next())?;
    let user_id = int("usage_records.user_id", next())?;
    let start_time_offset = small("usage_records.start_time_offset", next())?;
    let end_time_offset = small("usage_records.end_time_offset", next())?;
    let time_serial = int("usage_records.time_serial", next())?;
    let flags = int("usage_records.started", next())?;
    let start_time = time("usage_records.start_time", next())?;
    let end_text = next();
    let end_time = time("usage_records.end_time", end_text)?;
    let len = next();
    let len = corrupt_unless(
        "usage_records.meter_data_id",
        len,
        len.parse::<usize>().ok(),
    )?;
    let rest = fields.next().unwrap_or_default();
    let meter_data_id = rest.get(..len);
    let meter_data_id = corrupt_unless("usage_records.meter_data_id", rest, meter_data_id)?;
    let flag = |bit: i64| flags & bit != 0;
    let record = NewUsageRecord {
        meter_data_id: meter_data_id.to_string(),
        device_id,
        file_id,
        user_id,
        start_time,
        start_time_offset,
        end_time,
        end_time_offset,
        started: flag(1),
        still_running: flag(2),
        start_not_captured: flag(4),
        end_not_captured: flag(8),
        in_ts_session: flag(16),
    };
    let record = UsageRecord {
        id,
        record,
        time_serial,
        released: flag(32),
    };
    Ok((record, end_text, &rest[len..]))
}

/// A stored time, as sqlx's own decoding reads it: RFC 3339 (what Tally writes), else the
/// formats SQLite's date functions write, taken as UTC.
fn time(column: &'static str, text: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = ["%F %T%.f", "%F %R", "%FT%T%.f", "%FT%R"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok());
    corrupt_unless(column, text, naive.map(|n| n.and_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meter_data_id_with_commas_and_newlines_is_read_whole() {
        let text =
            "7,1,2,3,60,-60,9,17,2026-01-01T00:00:00+00:00,2026-01-01T00:15:00.5+00:00,4,a,\nb\n\
                    8,1,2,3,0,0,9,32,2026-01-01 00:00:00,2026-01-01T01:00:00+00:00,0,";
        let records = parse(text).unwrap();
        assert_eq!(records.len(), 2);
        let (a, b) = (&records[0], &records[1]);
        assert_eq!((a.id, a.device_id, a.file_id, a.user_id), (7, 1, 2, 3));
        assert_eq!((a.start_time_offset, a.end_time_offset), (60, -60));
        assert_eq!(a.meter_data_id, "a,\nb");
        assert!(a.started && a.in_ts_session && !a.still_running && !a.released);
        assert_eq!(a.end_time.timestamp_subsec_millis(), 500);
        assert_eq!(b.meter_data_id, "");
        assert!(b.released && !b.started);
        assert_eq!(
            b.start_time,
            "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn a_damaged_text_is_an_error_not_a_guess() {
        assert!(parse("x,1,2,3,0,0,9,0,2026-01-01T00:00:00Z,2026-01-01T00:00:00Z,0,").is_err());
        assert!(parse("1,1,2,3,0,0,9,0,2026-01-01T00:00:00Z,2026-01-01T00:00:00Z,9,ab").is_err());
        assert!(parse("1,1,2,3,0,0,9,0,yesterday,2026-01-01T00:00:00Z,0,").is_err());
    }
}
