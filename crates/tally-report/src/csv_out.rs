//! CSV: the table only, headed by the column keys, one line per row, for spreadsheets and
//! scripts. Values are printed as in every other format, except that each cell goes through
//! [`tally_core::escape::csv_cell`]: control characters shown as `\u{1b}`, and a text cell a
//! spreadsheet would run as a formula (`=HYPERLINK(…)`) prefixed with `'`. Numbers stay numbers.

use tally_core::escape::csv_cell;

use crate::{Report, ReportError};

pub(crate) fn render(report: &Report) -> Result<Vec<u8>, ReportError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| ReportError::Render(e.to_string());
    out.write_record(report.columns.iter().map(|c| csv_cell(&c.key).into_owned()))
        .map_err(failed)?;
    for row in &report.rows {
        out.write_record(row.iter().map(|c| csv_cell(&c.display()).into_owned()))
            .map_err(failed)?;
    }
    out.into_inner()
        .map_err(|e| ReportError::Render(e.to_string()))
}
