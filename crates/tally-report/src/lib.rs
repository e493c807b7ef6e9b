//! Tally's metering reports. A report is defined once in the [`catalogue`] (name, title, typed
//! parameters with defaults), built once into a [`Report`] (a header, one table, at most one
//! chart) by the service layer (`tally_service::reports`), and then rendered by each format
//! from that same value, so a PDF and its JSON never disagree on a figure. This crate renders
//! what it is given: it reads no store.

pub mod catalogue;
mod csv_out;
mod html;
pub mod model;
mod pdf;

use std::str::FromStr;

pub use catalogue::{find, ReportDef, ReportInfo, CATALOGUE};
pub use html::chart_svg;
pub use model::{Cell, Chart, Column, Report};

/// Why a report could not be made; each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no report named {name:?}; the reports are {known} (see tally report list)")]
    UnknownReport { name: String, known: String },
    #[error("report {report} has no parameter {param:?}; its parameters are {allowed}")]
    UnknownParam {
        report: String,
        param: String,
        allowed: String,
    },
    #[error("parameter {param}: {message}")]
    BadParam { param: String, message: String },
    #[error("program: no metering rule named {name:?}; the rules are {known}")]
    UnknownProgram { name: String, known: String },
    #[error("{0:?} is not a report format; use pdf, html, csv or json")]
    UnknownFormat(String),
    #[error("cannot render the report: {0}")]
    Render(String),
}

impl ReportError {
    /// Whether the caller asked for something wrong (as opposed to the server failing).
    pub fn is_caller_error(&self) -> bool {
        !matches!(self, ReportError::Render(_))
    }
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Pdf,
    Html,
    Csv,
    Json,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Pdf, Format::Html, Format::Csv, Format::Json];

    pub fn extension(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Html => "html",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Pdf => "application/pdf",
            Format::Html => "text/html; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

impl FromStr for Format {
    type Err = ReportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.extension().eq_ignore_ascii_case(s))
            .ok_or_else(|| ReportError::UnknownFormat(s.into()))
    }
}

/// Renders a built report in `format`.
pub fn render(report: &Report, format: Format) -> Result<Vec<u8>, ReportError> {
    match format {
        Format::Json => {
            serde_json::to_vec_pretty(&json(report)).map_err(|e| ReportError::Render(e.to_string()))
        }
        Format::Csv => csv_out::render(report),
        Format::Html => Ok(html::render(report).into_bytes()),
        Format::Pdf => pdf::render(report),
    }
}

/// Renders several reports as one document (HTML or PDF), each a section under the first
/// one's header: the system-metering report's overviews.
pub fn render_sections(sections: &[Report], format: Format) -> Result<Vec<u8>, ReportError> {
    match format {
        Format::Html => Ok(html::render_all(sections).into_bytes()),
        Format::Pdf => pdf::render_all(sections),
        other => Err(ReportError::Render(format!(
            "a document of sections is HTML or PDF, not {}",
            other.extension()
        ))),
    }
}

/// The JSON form: the header, the columns, and each row as an object keyed by column.
fn json(report: &Report) -> serde_json::Value {
    serde_json::json!({
        "name": report.name,
        "title": report.title,
        "site": report.site,
        "generated_at": report.generated_at,
        "params": report.params.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "notes": report.notes,
        "columns": report.columns,
        "rows": report.row_objects(),
        "chart": report.chart,
    })
}

/// A report the server writes on its schedule, named as its file: `monthly-usage.pdf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledReport {
    pub name: &'static str,
    pub format: Format,
}

impl ScheduledReport {
    /// What a site writes when its configuration names no reports.
    pub const DEFAULTS: [&'static str; 4] = [
        "monthly-usage.pdf",
        "reclaim.csv",
        "concurrency.pdf",
        "tasks.html",
    ];

    pub fn parse(file: &str) -> Result<Self, ReportError> {
        let (name, ext) = file.rsplit_once('.').ok_or_else(|| ReportError::BadParam {
            param: "scheduled_reports".into(),
            message: format!("{file:?} is not NAME.FORMAT, e.g. monthly-usage.pdf"),
        })?;
        Ok(Self {
            name: find(name)?.name,
            format: ext.parse()?,
        })
    }

    pub fn file_name(&self) -> String {
        format!("{}.{}", self.name, self.format.extension())
    }
}
