//! Every limit on what Tally accepts from outside (the agent API, the admin API, `tally
//! import`), in one place, so the checks, the OpenAPI document and `docs/security.md` can
//! agree. Agents are untrusted input and operators make mistakes: a value past one of these
//! limits is refused whole with the field named, never truncated or stored to break a later
//! reader.
//!
//! The OpenAPI document states the same numbers in `#[schema(max_length = …, minimum = …,
//! maximum = …)]` on the request types; utoipa takes only literals there, so a test in
//! `tally-server` (`tests/input_limits.rs`) reads the served document back and compares it with these
//! constants (`the_openapi_document_states_the_limits_the_server_enforces`).

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};

use crate::ValidationError;

/// Names: accounts, full names, host names, file and product names, publishers, rule,
/// application and org-node names, serial numbers, CPU models. 255 characters is what
/// Configuration Manager's own name columns and DNS host names allow; nothing real is longer.
pub const MAX_NAME: usize = 255;
/// Free text and paths: comments, notes, OS descriptions, login shells. 4096 is Linux's
/// `PATH_MAX`.
pub const MAX_TEXT: usize = 4096;
/// Versions: a file's or package's version, an agent's version, version patterns. Debian's
/// longest real versions are under 80 characters.
pub const MAX_VERSION: usize = 128;
/// Identifiers an agent makes up: a run's `meter_data_id`, a batch id, an inventory hash.
pub const MAX_ID: usize = 128;

/// Records one agent may report dropping in one upload. An agent's spool holds 100,000
/// records by default (`--spool-max-records`) and it reports its drops with every upload, so
/// ten million per report is far above any real count, while a running total of such
/// reports cannot come near `i64::MAX` in any lifetime (the stored sum also saturates, in the
/// store, so even that cannot break the agents list).
pub const MAX_DROPPED_PER_REPORT: u64 = 10_000_000;

/// The most units one license (or one custom compare value) may count. A billion seats is
/// beyond any estate, and a sum of 9 billion such licenses still fits an `i64`; the engine
/// also adds with saturation, so rows stored before this limit cannot wrap.
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// The longest rolling metering period an application may have: ten years (and a leap day
/// or two). A longer one is a typo, and would make the concurrent metrics' hourly peak grow
/// with it.
pub const MAX_PERIOD_DAYS: u32 = 3660;

/// Processor sockets, cores or threads of one machine. The largest single-image machines
/// have a few thousand cores; 1,048,576 leaves room and keeps PVU × cores far from overflow.
pub const MAX_PROCESSORS: i32 = 1_048_576;
/// Memory of one machine in bytes: 1 PiB × 1024 (an exbibyte), far beyond any machine.
pub const MAX_MEMORY_BYTES: i64 = 1 << 60;
/// PVU per core in IBM's table are at most 120; 10,000 allows any override an admin means.
pub const MAX_PVU_PER_CORE: i32 = 10_000;
/// Language identifiers are 16-bit (65535: any).
pub const MAX_LANGUAGE: i32 = 65_535;

/// The earliest time a usage record or session may start: nothing Tally meters ran before
/// 2000, and a time before it is a broken clock or a forged report.
pub fn earliest_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .expect("2000-01-01 is a valid time")
}

/// How far ahead of the server's clock an endpoint's clock may be: one day, more than any
/// real drift (agents run NTP or at least follow the host's clock) and less than would let a
/// record pretend to describe the future.
pub const MAX_CLOCK_SKEW: Duration = Duration::days(1);

/// The window every usage time must lie in at `now`: from [`earliest_time`] to `now` plus
/// [`MAX_CLOCK_SKEW`]. The compliance and summary work per record is bounded by the metering
/// period or the retention instead (see `compliance` and `summary`), so even a row stored
/// before this check cannot make that work grow with its length.
pub fn plausible_times(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (earliest_time(), now + MAX_CLOCK_SKEW)
}

/// Refuses a time outside [`plausible_times`].
pub fn check_time(
    field: &'static str,
    t: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), ValidationError> {
    let (from, to) = plausible_times(now);
    if t < from || t > to {
        return Err(ValidationError::new(
            field,
            format!(
                "{} is outside the plausible window {} to {} (the server's clock plus {} hours); check the clock of whatever wrote it",
                t.to_rfc3339_opts(SecondsFormat::Secs, true),
                from.to_rfc3339_opts(SecondsFormat::Secs, true),
                to.to_rfc3339_opts(SecondsFormat::Secs, true),
                MAX_CLOCK_SKEW.num_hours()
            ),
        ));
    }
    Ok(())
}

/// Refuses a name longer than `max` characters or holding any control character (NUL,
/// escape, newline, …): names are printed in terminals and written to CSV.
pub fn check_name(field: &'static str, value: &str, max: usize) -> Result<(), ValidationError> {
    check_length(field, value, max)?;
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters (NUL, escape, newline, …)",
        ));
    }
    Ok(())
}

/// Refuses free text longer than `max` characters or holding control characters other than
/// newline, carriage return and tab.
pub fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), ValidationError> {
    check_length(field, value, max)?;
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ValidationError::new(
            field,
            "must not contain control characters other than newline and tab",
        ));
    }
    Ok(())
}

fn check_length(field: &'static str, value: &str, max: usize) -> Result<(), ValidationError> {
    // Bytes bound characters from above, so most values need no count.
    if value.len() > max && value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("at most {max} characters"),
        ));
    }
    Ok(())
}

/// [`check_name`] on an optional value.
pub fn check_opt_name(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<(), ValidationError> {
    value.map_or(Ok(()), |v| check_name(field, v, max))
}

/// Refuses a number outside `range`.
pub fn check_range<T>(
    field: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), ValidationError>
where
    T: PartialOrd + std::fmt::Display,
{
    if !range.contains(&value) {
        return Err(ValidationError::new(
            field,
            format!(
                "{value} is out of range; allowed: {} to {}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_in_characters_and_printable() {
        assert!(check_name("n", &"é".repeat(MAX_NAME), MAX_NAME).is_ok());
        assert!(check_name("n", &"a".repeat(MAX_NAME + 1), MAX_NAME).is_err());
        for bad in ["a\0b", "\u{1b}[2J", "a\nb", "\u{9b}x"] {
            assert_eq!(check_name("n", bad, MAX_NAME).unwrap_err().field, "n");
        }
        assert!(check_text("t", "line 1\nline 2\ttab", MAX_TEXT).is_ok());
        assert!(check_text("t", "bell\u{7}", MAX_TEXT).is_err());
    }

    #[test]
    fn times_must_lie_between_2000_and_a_day_ahead_of_the_clock() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        assert!(check_time("t", earliest_time(), now).is_ok());
        assert!(check_time("t", now + Duration::hours(24), now).is_ok());
        assert!(check_time("t", now + Duration::hours(25), now).is_err());
        let y1999 = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(check_time("start", y1999, now).unwrap_err().field, "start");
    }

    #[test]
    fn ranges_name_their_bounds() {
        let e = check_range("cores", -5, 0..=MAX_PROCESSORS).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cores: -5 is out of range; allowed: 0 to 1048576"
        );
    }
}
