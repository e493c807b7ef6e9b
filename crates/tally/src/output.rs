//! Printing API rows: aligned tables for people, JSON and CSV for scripts.
//!
//! What the server answers is stored text from agents and imports, untrusted: every table
//! cell goes through [`tally_core::escape::controls`] (an agent version of `ESC[2J` prints as
//! `\u{1b}[2J` instead of clearing the screen) and every CSV cell through
//! [`tally_core::escape::csv_cell`] (also no spreadsheet formulas). JSON is printed exact.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use tally_core::escape;

/// A time as tables show it: RFC 3339 to the second, in UTC (`2026-11-30T14:05:09Z`); the
/// nanoseconds the server stores mean nothing to a person reading a table.
pub fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A duration in milliseconds in units that fit: `850 ms`, `42 s`, `3 min 05 s`, `1 h 05 min`,
/// `1,234 h 00 min` (hours are what licences are counted in, so no days).
pub fn duration_text(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    let secs = ms / 1000;
    let text = match secs {
        0 => format!("{ms} ms"),
        1..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {:02} s", secs / 60, secs % 60),
        _ => format!("{} h {:02} min", thousands(secs / 3600), (secs % 3600) / 60),
    };
    format!("{sign}{text}")
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

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
    fn durations_use_units_that_fit() {
        assert_eq!(duration_text(0), "0 ms");
        assert_eq!(duration_text(850), "850 ms");
        assert_eq!(duration_text(42_000), "42 s");
        assert_eq!(duration_text(42_999), "42 s");
        assert_eq!(duration_text(185_000), "3 min 05 s");
        assert_eq!(duration_text(3_900_000), "1 h 05 min");
        assert_eq!(duration_text(1_234 * 3_600_000), "1,234 h 00 min");
        assert_eq!(duration_text(-42_000), "-42 s");
    }

    #[test]
    fn times_print_to_the_second_in_utc() {
        let t = DateTime::parse_from_rfc3339("2026-11-30T15:05:09.123456789+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(time_text(t), "2026-11-30T14:05:09Z");
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
