//! `tally export`: the stored estate written back in the formats `tally import` reads, one
//! file per kind, so that an estate can be checked, edited and loaded elsewhere. Rows are
//! read a page at a time and streamed to the file; each file appears whole or not at all.
//! CSV cells are neutralised for spreadsheets (see `tally_core::escape`); JSON is exact.

use std::fs::File;
use std::io::{BufWriter, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tally_core::import::Kind;
use tally_service::export_files;
use tally_store::prelude::*;

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
    let spinner = spinner(kind);
    let format = match format {
        Format::Csv => export_files::Format::Csv,
        Format::Json => export_files::Format::Json,
    };
    let progress = |done: u64| spinner.set_position(done);
    let (out, count) =
        export_files::export_kind(store, kind, format, BufWriter::new(file), &progress)
            .await
            .with_context(|| format!("cannot export the stored {}", kind.name()))?;
    spinner.finish_and_clear();
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
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
