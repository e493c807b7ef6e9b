//! Printing API rows: aligned tables for people, JSON and CSV for scripts.
//!
//! What the server answers is stored text from agents and imports, untrusted: every table
//! cell goes through [`tally_core::escape::controls`] (an agent version of `ESC[2J` prints as
//! `\u{1b}[2J` instead of clearing the screen) and every CSV cell through
//! [`tally_core::escape::csv_cell`] (also no spreadsheet formulas). JSON is printed exact.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tally_core::escape;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Prints rows (the API's objects). JSON is the objects unchanged (fields in name order, as
/// the CLI has always printed them); CSV has every field of the objects; the table shows
/// `columns`.
pub fn print<T: Serialize>(rows: &[T], columns: &[&str], format: Format) -> std::io::Result<()> {
    let rows = rows
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<Value>, _>>()?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)
        }
        Format::Csv => write_csv(&mut out, &rows),
        Format::Table => write_table(&mut out, &rows, columns),
    }
}

/// Prints rows as [`print`] does, except that the table prints each row's `line` (a view of
/// the row made for people, e.g. money as `129.90 EUR`).
pub fn print_lines<'a, T: Serialize, L: Serialize>(
    rows: &'a [T],
    columns: &[&str],
    format: Format,
    line: impl Fn(&'a T) -> L,
) -> std::io::Result<()> {
    if format != Format::Table {
        return print(rows, columns, format);
    }
    let lines: Vec<L> = rows.iter().map(line).collect();
    print(&lines, columns, format)
}

/// Prints one answer as JSON, fields in name order (for `--format json` of a non-list answer).
pub fn print_value<T: Serialize>(value: &T) -> std::io::Result<()> {
    let value = serde_json::to_value(value)?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &value)?;
    writeln!(out)
}

/// Money as a table shows it: minor units (cents) as a decimal with thousands separators and
/// the currency, `money_text(15176000, "EUR")` → `151,760.00 EUR`, so amounts line up and read
/// at a glance. An empty currency leaves the figure bare.
pub fn money_text(minor: i64, currency: &str) -> String {
    let figure = amount(minor, true);
    match currency.trim() {
        "" => figure,
        currency => format!("{figure} {currency}"),
    }
}

/// Money for people: `215000` EUR → `2,150.00 EUR`.
pub fn money(m: &tally_core::compliance::Money) -> String {
    money_text(m.minor, &m.currency)
}

/// Minor units as a decimal amount, `-1234567` → `-12,345.67` (`grouped`) or `-12345.67`
/// (for CSV, which spreadsheets read as a number).
pub fn amount(minor: i64, grouped: bool) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let (units, cents) = (minor.unsigned_abs() / 100, minor.unsigned_abs() % 100);
    let units = match grouped {
        // `units` is at most `i64::MAX / 100`, so it fits back into an i64.
        true => tally_report::model::thousands(units as i64),
        false => units.to_string(),
    };
    format!("{sign}{units}.{cents:02}")
}

/// A time as a table shows it: to the second, in UTC (`2026-03-20 14:05:09 UTC`).
pub fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A length of time in units that fit (`40 s`, `45 min`, `3 h 05 min`), as the
/// reports print it.
pub fn duration_text(ms: i64) -> String {
    tally_report::model::duration_text(ms)
}

/// A value as a table shows it: text without its quotes, controls escaped.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => escape::controls(s).into_owned(),
        other => escape::controls(&other.to_string()).into_owned(),
    }
}

/// A value as a CSV cell: text neutralised for spreadsheets, numbers as they are.
fn csv_value(v: &Value) -> String {
    match v {
        Value::String(s) => escape::csv_cell(s).into_owned(),
        other => cell(other),
    }
}

fn write_table(out: &mut impl Write, rows: &[Value], columns: &[&str]) -> std::io::Result<()> {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(&r[*c])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |out: &mut dyn Write, values: Vec<&str>| -> std::io::Result<()> {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        writeln!(out, "{}", padded.join("  ").trim_end())
    };
    let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    line(out, header.iter().map(String::as_str).collect())?;
    for row in &cells {
        line(out, row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

/// Quotes a (neutralised) cell for the CSV syntax.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv(out: &mut impl Write, rows: &[Value]) -> std::io::Result<()> {
    let Some(first) = rows.first().and_then(Value::as_object) else {
        return Ok(());
    };
    let keys: Vec<&String> = first.keys().collect();
    writeln!(
        out,
        "{}",
        keys.iter()
            .map(|k| csv_field(&escape::csv_cell(k)))
            .collect::<Vec<_>>()
            .join(",")
    )?;
    for row in rows {
        let fields: Vec<String> = keys
            .iter()
            .map(|k| csv_field(&csv_value(&row[k.as_str()])))
            .collect();
        writeln!(out, "{}", fields.join(","))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn money_has_thousands_separators_and_its_currency() {
        assert_eq!(money_text(44_900, "EUR"), "449.00 EUR");
        assert_eq!(money_text(15_176_000, "EUR"), "151,760.00 EUR");
        assert_eq!(money_text(123_456_789_012, "USD"), "1,234,567,890.12 USD");
        assert_eq!(money_text(5, "EUR"), "0.05 EUR");
        assert_eq!(money_text(-100_050, "EUR"), "-1,000.50 EUR");
        assert_eq!(money_text(i64::MIN, ""), "-92,233,720,368,547,758.08");
        assert_eq!(money_text(99_999, ""), "999.99");
    }

    #[test]
    fn times_to_the_second_and_durations_in_units_that_fit() {
        let t = DateTime::parse_from_rfc3339("2026-03-20T14:05:09.123456789Z").unwrap();
        assert_eq!(time_text(t.to_utc()), "2026-03-20 14:05:09 UTC");
        assert_eq!(duration_text(40_000), "40 s");
        assert_eq!(duration_text(45 * 60_000), "45 min");
        assert_eq!(duration_text(24 * 3_600_000), "24 h 00 min");
        assert_eq!(duration_text(3 * 3_600_000 + 5 * 60_000), "3 h 05 min");
        assert_eq!(duration_text(1250 * 3_600_000), "1,250 h");
    }

    #[test]
    fn money_is_grouped_in_thousands_with_its_currency() {
        let m = |minor| tally_core::compliance::Money {
            minor,
            currency: "EUR".into(),
        };
        assert_eq!(money(&m(215_000)), "2,150.00 EUR");
        assert_eq!(money(&m(5)), "0.05 EUR");
        assert_eq!(money(&m(-123_456_789)), "-1,234,567.89 EUR");
        assert_eq!(amount(123_456_789, false), "1234567.89");
    }

    #[test]
    fn tables_align_and_csv_quotes() {
        let rows = vec![
            json!({"a": "x", "b": 1}),
            json!({"a": "longer, with \"quotes\"", "b": null}),
        ];
        let mut t = Vec::new();
        write_table(&mut t, &rows, &["a", "b"]).unwrap();
        let t = String::from_utf8(t).unwrap();
        // The widest cell, `longer, with "quotes"`, is 21 characters; columns are 2 apart.
        assert_eq!(t.lines().next().unwrap(), format!("A{}B", " ".repeat(22)));
        assert_eq!(t.lines().nth(1).unwrap(), format!("x{}1", " ".repeat(22)));
        let mut c = Vec::new();
        write_csv(&mut c, &rows).unwrap();
        assert_eq!(
            String::from_utf8(c).unwrap(),
            "a,b\nx,1\n\"longer, with \"\"quotes\"\"\",\n"
        );
    }

    #[test]
    fn tables_escape_controls_and_csv_neutralises_formulas() {
        let rows = vec![
            json!({"v": "\u{1b}[2Jx", "n": -3}),
            json!({"v": "=1+1", "n": 4}),
        ];
        let mut t = Vec::new();
        write_table(&mut t, &rows, &["v", "n"]).unwrap();
        let t = String::from_utf8(t).unwrap();
        assert!(!t.contains('\u{1b}'), "{t}");
        // Widths count the escaped text, so the columns stay aligned.
        assert_eq!(t.lines().nth(1).unwrap(), "\\u{1b}[2Jx  -3");
        let mut c = Vec::new();
        write_csv(&mut c, &rows).unwrap();
        assert_eq!(
            String::from_utf8(c).unwrap(),
            "n,v\n-3,\\u{1b}[2Jx\n4,'=1+1\n"
        );
    }
}
