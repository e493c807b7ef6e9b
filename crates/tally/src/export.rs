//! `tally export`: the stored estate written back in the formats `tally import` reads, one
//! file per kind, so that an estate can be checked, edited and loaded elsewhere. Rows are
//! read a page at a time and streamed to the file; each file appears whole or not at all.
//! CSV cells are neutralised for spreadsheets (see `tally_core::escape`); JSON is exact.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tally_core::import::{AnyRow, Kind};
use tally_store::prelude::*;

/// Rows read per query.
const PAGE: i64 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The directory the files go to (created if missing): org_nodes.csv, devices.csv, …
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Only these kinds (repeatable): org_nodes, devices, users, applications,
    /// installations, usage_sessions, licenses, custom_values [default: all].
    #[arg(long = "kind", value_parser = parse_kind)]
    kinds: Vec<Kind>,
    #[command(flatten)]
    database: crate::import::Database,
}

fn parse_kind(text: &str) -> Result<Kind, String> {
    Kind::ALL
        .into_iter()
        .find(|k| k.name() == text)
        .ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!("no kind {text:?}; use one of: {}", names.join(", "))
        })
}

pub async fn export(args: ExportArgs) -> Result<()> {
    let store = args.database.open(false).await?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the directory {}", args.out.display()))?;
    let kinds = match args.kinds.is_empty() {
        true => Kind::ALL.to_vec(),
        false => args.kinds.clone(),
    };
    for kind in kinds {
        let ext = match args.format {
            Format::Csv => "csv",
            Format::Json => "json",
        };
        let path = args.out.join(format!("{}.{ext}", kind.name()));
        let rows = export_kind(store.as_ref(), kind, args.format, &path).await?;
        println!("{rows:>10} {}", path.display());
    }
    Ok(())
}

/// Writes every row of `kind` to `path` by way of a temporary file beside it.
async fn export_kind(store: &dyn Store, kind: Kind, format: Format, path: &Path) -> Result<u64> {
    let partial = path.with_extension("partial");
    let file =
        File::create(&partial).with_context(|| format!("cannot write {}", partial.display()))?;
    let mut writer = Writer::new(BufWriter::new(file), format);
    let spinner = spinner(kind);
    let (mut after, mut count) = (0, 0u64);
    loop {
        let (rows, next) = store
            .export_page(kind, after, PAGE)
            .await
            .with_context(|| format!("cannot read the stored {}", kind.name()))?;
        for row in &rows {
            writer.row(row)?;
        }
        count += rows.len() as u64;
        spinner.set_position(count);
        match next {
            Some(cursor) => after = cursor,
            None => break,
        }
    }
    spinner.finish_and_clear();
    writer
        .finish()
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot move {} into place", partial.display()))?;
    Ok(count)
}

fn spinner(kind: Kind) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_message(kind.name());
    bar.set_style(
        ProgressStyle::with_template("{spinner} exporting {msg}: {pos} rows")
            .expect("a valid template"),
    );
    bar
}

/// A CSV file with a header row, or a JSON array with one object per line.
enum Writer {
    Csv {
        out: Box<csv::Writer<BufWriter<File>>>,
        first: bool,
    },
    Json {
        out: BufWriter<File>,
        first: bool,
    },
}

impl Writer {
    fn new(out: BufWriter<File>, format: Format) -> Self {
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
                    )?;
                }
                *first = false;
            }
            Writer::Json { out, first } => {
                out.write_all(if *first { b"[\n" } else { b",\n" })?;
                serde_json::to_writer(&mut *out, row)?;
                *first = false;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        let mut out = match self {
            Writer::Csv { out, .. } => out.into_inner().map_err(|e| e.into_error())?,
            Writer::Json { mut out, first } => {
                out.write_all(if first { b"[]\n" } else { b"\n]\n" })?;
                out
            }
        };
        out.flush()?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
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
    scratch.serialize(row)?;
    let text = scratch.into_inner().map_err(|e| e.into_error())?;
    let records = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_slice())
        .into_records()
        .collect::<Result<_, _>>()?;
    Ok(records)
}
