//! CSV: the table only, headed by the column keys, one line per row, for spreadsheets and
//! scripts. Values are printed as in every other format.

use crate::{Report, ReportError};

pub(crate) fn render(report: &Report) -> Result<Vec<u8>, ReportError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| ReportError::Render(e.to_string());
    out.write_record(report.columns.iter().map(|c| c.key.as_str()))
        .map_err(failed)?;
    for row in &report.rows {
        out.write_record(row.iter().map(|c| c.display()))
            .map_err(failed)?;
    }
    out.into_inner()
        .map_err(|e| ReportError::Render(e.to_string()))
}
