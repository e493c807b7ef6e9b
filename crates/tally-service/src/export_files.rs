//! The stored estate written in the formats `tally import` reads, one kind at a time, for
//! `tally export` (to files) and the web console (a download). Rows are read a page at a time
//! and streamed to the writer. CSV cells are neutralised for spreadsheets (see
//! `tally_core::escape`); JSON is exact.

use std::io::Write;

use tally_core::import::{AnyRow, Kind};
use tally_store::prelude::*;

use crate::{Result, ServiceError};

/// Rows read per query.
const PAGE: i64 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

/// The kind a name such as `devices` stands for.
pub fn kind_named(name: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.name() == name)
}

fn failed(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("cannot write the export: {e}"))
}

/// Writes every stored row of `kind` to `out` in `format`, telling `progress` the rows done;
/// returns the writer (flushed) and the count.
pub async fn export_kind<W: Write>(
    store: &dyn Store,
    kind: Kind,
    format: Format,
    out: W,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<(W, u64)> {
    let mut writer = Writer::new(out, format);
    let (mut after, mut count) = (0, 0u64);
    loop {
        let (rows, next) = store.export_page(kind, after, PAGE).await?;
        for row in &rows {
            writer.row(row)?;
        }
        count += rows.len() as u64;
        progress(count);
        match next {
            Some(cursor) => after = cursor,
            None => break,
        }
    }
    Ok((writer.finish()?, count))
}

/// A CSV file with a header row, or a JSON array with one object per line.
enum Writer<W: Write> {
    Csv {
        out: Box<csv::Writer<W>>,
        first: bool,
    },
    Json {
        out: W,
        first: bool,
    },
}

impl<W: Write> Writer<W> {
    fn new(out: W, format: Format) -> Self {
        match format {
            Format::Csv => Writer::Csv {
                out: Box::new(csv::Writer::from_writer(out)),
                first: true,
            },
            Format::Json => Writer::Json { out, first: true },
        }
    }

    fn row(&mut self, row: &AnyRow) -> Result<()> {
        match self {
            Writer::Csv { out, first } => {
                for record in csv_records(row, *first)? {
                    out.write_record(
                        record
                            .iter()
                            .map(|c| tally_core::escape::csv_cell(c).into_owned()),
                    )
                    .map_err(failed)?;
                }
                *first = false;
            }
            Writer::Json { out, first } => {
                out.write_all(if *first { b"[\n" } else { b",\n" })
                    .map_err(failed)?;
                serde_json::to_writer(&mut *out, row).map_err(failed)?;
                *first = false;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<W> {
        let mut out = match self {
            Writer::Csv { out, .. } => out.into_inner().map_err(|e| failed(e.into_error()))?,
            Writer::Json { mut out, first } => {
                out.write_all(if first { b"[]\n" } else { b"\n]\n" })
                    .map_err(failed)?;
                out
            }
        };
        out.flush().map_err(failed)?;
        Ok(out)
    }
}

/// The CSV records of one row as csv's serde support writes them (the header first when
/// `header`), read back as text so that every cell can go through
/// [`tally_core::escape::csv_cell`] before it is written: a host name `=HYPERLINK(…)` leaves
/// as `'=HYPERLINK(…)`, while `-12.50` stays a number. JSON export writes values exact.
fn csv_records(row: &AnyRow, header: bool) -> Result<Vec<csv::StringRecord>> {
    let mut scratch = csv::WriterBuilder::new()
        .has_headers(header)
        .from_writer(Vec::new());
    scratch.serialize(row).map_err(failed)?;
    let text = scratch.into_inner().map_err(|e| failed(e.into_error()))?;
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_slice())
        .into_records()
        .collect::<std::result::Result<_, _>>()
        .map_err(failed)
}
