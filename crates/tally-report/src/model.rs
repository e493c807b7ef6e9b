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
    /// Already rounded to two decimals (hours and the like).
    Num(f64),
    Empty,
}

impl Cell {
    /// Rounds to two decimals, the precision every format shows.
    pub fn num(value: f64) -> Self {
        Cell::Num((value * 100.0).round() / 100.0)
    }

    pub fn hours(ms: i64) -> Self {
        Cell::num(ms as f64 / 3_600_000.0)
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
            Cell::Empty => String::new(),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(n) => Some(*n as f64),
            Cell::Num(x) => Some(*x),
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
