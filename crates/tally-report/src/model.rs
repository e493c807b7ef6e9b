//! A built report: what every renderer draws from, so that the PDF, the HTML, the CSV and the
//! JSON of one report always hold the same figures.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// One report, built: a header, one table and at most one chart.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Report {
    /// The catalogue name, e.g. `monthly-usage`.
    pub name: String,
    pub title: String,
    /// The site's alias when it has one, else its name; printed on every page.
    pub site: String,
    pub generated_at: DateTime<Utc>,
    /// The parameters the report ran with, defaults filled in, as `name = value` text.
    pub params: Vec<(String, String)>,
    /// Lines a reader needs before the table (e.g. which program a default picked).
    pub notes: Vec<String>,
    pub columns: Vec<Column>,
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub rows: Vec<Vec<Cell>>,
    pub chart: Option<Chart>,
}

/// A table column.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Column {
    /// A stable machine name (`snake_case`), the key in JSON.
    pub key: String,
    /// The heading people read.
    pub label: String,
    /// Numbers are right-aligned.
    pub numeric: bool,
}

impl Column {
    pub fn text(key: &str, label: &str) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
            numeric: false,
        }
    }

    pub fn number(key: &str, label: &str) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
            numeric: true,
        }
    }
}

/// One table cell. Every renderer prints a cell with [`Cell::display`], so the figures agree.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    Text(String),
    Int(i64),
    /// Already rounded to two decimals.
    Num(f64),
    /// A length of time in milliseconds, shown in units that fit (`45 min`, `3 h 05 min`) by
    /// every format, JSON included, so that they agree.
    #[serde(serialize_with = "duration_cell")]
    Duration(i64),
    Empty,
}

fn duration_cell<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&duration_text(*ms))
}

/// A length of time in units that fit: `40 s`, `45 min`, `3 h 05 min`, `24 h 00 min`, `1,250 h`
/// (whole hours keep their minutes: a PDF reader runs a lone `2 h` together as `2h`).
pub fn duration_text(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (hours, minutes) = (secs / 3600, secs % 3600 / 60);
    match (hours, minutes) {
        (0, 0) => format!("{secs} s"),
        (0, m) => format!("{m} min"),
        (h, m) if h < 100 => format!("{h} h {m:02} min"),
        (h, _) => format!("{} h", thousands(h)),
    }
}

/// `n` and the noun, plural when `n` is not one: `3 devices`, `1 license`.
pub fn plural(n: i64, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::from(if n < 0 { "-" } else { "" });
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A chart's value as text: hours as a duration, whole numbers (counts) without decimals.
pub fn chart_value(value: f64, unit: &str) -> String {
    if unit == "hours" {
        duration_text((value * 3_600_000.0).round() as i64)
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        thousands(value as i64)
    } else {
        format!("{value:.2}")
    }
}

impl Cell {
    /// Rounds to two decimals, the precision every format shows.
    pub fn num(value: f64) -> Self {
        Cell::Num((value * 100.0).round() / 100.0)
    }

    /// A duration, shown in units that fit ([`duration_text`]).
    pub fn hours(ms: i64) -> Self {
        Cell::Duration(ms)
    }

    pub fn text(value: impl Into<String>) -> Self {
        Cell::Text(value.into())
    }

    /// A time to the minute, in UTC.
    pub fn time(t: DateTime<Utc>) -> Self {
        Cell::Text(t.format("%Y-%m-%d %H:%M").to_string())
    }

    pub fn display(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Num(x) => format!("{x:.2}"),
            Cell::Duration(ms) => duration_text(*ms),
            Cell::Empty => String::new(),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(n) => Some(*n as f64),
            Cell::Num(x) => Some(*x),
            Cell::Duration(ms) => Some(*ms as f64 / 3_600_000.0),
            _ => None,
        }
    }
}

/// A chart drawn above the table.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Chart {
    /// Horizontal bars, one per label.
    Bars {
        title: String,
        unit: String,
        bars: Vec<(String, f64)>,
    },
    /// A grid of shaded cells (rows × columns), darker for larger values.
    HeatMap {
        title: String,
        rows: Vec<String>,
        columns: Vec<String>,
        values: Vec<Vec<f64>>,
    },
}

/// The largest value of a heat map, never zero, so every renderer shades a cell by
/// `value / max` without dividing by zero.
pub(crate) fn heat_map_max(values: &[Vec<f64>]) -> f64 {
    values
        .iter()
        .flatten()
        .copied()
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE)
}

impl Report {
    /// The report's rows as JSON objects keyed by column key.
    pub fn row_objects(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| {
                        let value = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
                        (c.key.clone(), value)
                    })
                    .collect()
            })
            .collect()
    }
}
