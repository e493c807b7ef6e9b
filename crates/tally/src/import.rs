//! `tally import`: loads org nodes, devices, users, applications, installations, usage
//! sessions and licenses from CSV or JSON files straight into the database (run it where the
//! server's database is reachable). Every file is read and every row checked first; only
//! then is anything written, in one transaction.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::de::DeserializeOwned;
use tally_core::import::{Batch, ImportError, Kind, Origin, Rows};
use tally_core::SiteCode;

/// Problems printed before giving up; the count of the rest follows.
const SHOWN_ERRORS: usize = 50;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// CSV or JSON files, each named for what it holds: org_nodes, devices, users,
    /// applications, installations, usage_sessions, licenses, custom_values (e.g. devices.csv,
    /// 2026-licenses.json). See docs/import-format.md.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    database: Database,
    /// The site new devices belong to.
    #[arg(long, env = "TALLY_SITE_CODE", default_value = "S01")]
    site_code: String,
    /// Check the files against the database and report problems; load nothing.
    #[arg(long)]
    check: bool,
}

/// The database `tally import` and `tally export` work on directly.
#[derive(Args, Debug)]
pub struct Database {
    /// The database (default: the SQLite file in --data-dir).
    #[arg(long, env = "TALLY_DATABASE_URL")]
    database_url: Option<String>,
    #[arg(long, env = "TALLY_DATA_DIR", default_value = "tally-data")]
    data_dir: PathBuf,
}

impl Database {
    pub async fn open(&self) -> Result<std::sync::Arc<dyn tally_store::Store>> {
        let url = self
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("tally.db").display()));
        tally_store::open(&url)
            .await
            .with_context(|| format!("cannot open the database {url}"))
    }
}

pub async fn import(args: ImportArgs) -> Result<()> {
    let site = SiteCode::parse(&args.site_code)?;
    let mut batch = Batch::default();
    let mut errors = Vec::new();
    for path in &args.files {
        read_file(path, &mut batch, &mut errors)?;
    }
    let store = args.database.open().await?;
    ensure_site(store.as_ref(), &site, !args.check).await?;
    if errors.is_empty() {
        errors = tally_core::import::validate(&batch, &store.import_known().await?);
    }
    report(&errors)?;
    if args.check {
        eprintln!("{} rows checked; nothing loaded (--check)", total(&batch));
        return Ok(());
    }
    let bar = bar(total(&batch), "loading");
    let progress = |done: u64| bar.set_position(done);
    let outcome = store
        .import(&batch, &site, chrono::Utc::now(), &progress)
        .await;
    bar.finish_and_clear();
    let outcome = outcome.context("the import failed and nothing was loaded")?;
    println!("{}", serde_json::to_string_pretty(&outcome)?);
    Ok(())
}

/// New devices need their site. A database no server has started on yet gets it (named as
/// `tally up` would name it), so an estate can be loaded before the first start; in one that
/// has sites, an unknown code is a mistake to report rather than a site to invent.
async fn ensure_site(store: &dyn tally_store::Store, code: &SiteCode, create: bool) -> Result<()> {
    if store.site(code).await?.is_some() || !create && store.sites().await?.is_empty() {
        return Ok(());
    }
    let sites = store.sites().await?;
    if !sites.is_empty() {
        let codes: Vec<&str> = sites.iter().map(|s| s.code.as_str()).collect();
        bail!(
            "site {code} is not in this database; pass --site-code with one of: {}",
            codes.join(", ")
        );
    }
    store
        .put_site(&tally_core::Site {
            code: code.clone(),
            name: format!("Tally site {code}"),
            alias: None,
            parent: None,
        })
        .await?;
    Ok(())
}

fn total(b: &Batch) -> u64 {
    (b.org_nodes.len()
        + b.devices.len()
        + b.users.len()
        + b.applications.len()
        + b.installations.len()
        + b.sessions.len()
        + b.licenses.len()
        + b.custom_values.len()) as u64
}

fn report(errors: &[ImportError]) -> Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    for e in errors.iter().take(SHOWN_ERRORS) {
        eprintln!("{e}");
    }
    if errors.len() > SHOWN_ERRORS {
        eprintln!("… and {} more", errors.len() - SHOWN_ERRORS);
    }
    bail!(
        "{} problems found; nothing was loaded. Fix the rows named above and run the import again",
        errors.len()
    )
}

fn bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_message(what.to_string());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {eta}")
            .expect("a valid template"),
    );
    bar
}

fn read_file(path: &Path, batch: &mut Batch, errors: &mut Vec<ImportError>) -> Result<()> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    let Some(kind) = Kind::of_file(stem) else {
        bail!(
            "{}: name the file after what it holds, ending in one of: {}",
            path.display(),
            names.join(", ")
        );
    };
    let json = match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("json") => true,
        Some(e) if e.eq_ignore_ascii_case("csv") => false,
        _ => bail!("{}: give a .csv or a .json file", path.display()),
    };
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = bar(size, &format!("reading {}", path.display()));
    let reader = BufReader::new(bar.wrap_read(file));
    let name = path.display().to_string();
    match kind {
        Kind::OrgNodes => rows(reader, &name, json, &mut batch.org_nodes, errors)?,
        Kind::Devices => rows(reader, &name, json, &mut batch.devices, errors)?,
        Kind::Users => rows(reader, &name, json, &mut batch.users, errors)?,
        Kind::Applications => rows(reader, &name, json, &mut batch.applications, errors)?,
        Kind::Installations => rows(reader, &name, json, &mut batch.installations, errors)?,
        Kind::UsageSessions => rows(reader, &name, json, &mut batch.sessions, errors)?,
        Kind::Licenses => rows(reader, &name, json, &mut batch.licenses, errors)?,
        Kind::CustomValues => rows(reader, &name, json, &mut batch.custom_values, errors)?,
    }
    bar.finish_and_clear();
    Ok(())
}

fn rows<T: DeserializeOwned>(
    reader: impl Read,
    file: &str,
    json: bool,
    into: &mut Rows<T>,
    errors: &mut Vec<ImportError>,
) -> Result<()> {
    match json {
        true => json_rows(reader, file, into, errors),
        false => csv_rows(reader, file, into, errors),
    }
}

fn origin(file: &str, line: usize) -> Origin {
    Origin {
        file: file.to_string(),
        line,
    }
}

/// A CSV file: a header row naming the fields, then one row per record; empty cells are
/// absent values.
fn csv_rows<T: DeserializeOwned>(
    reader: impl Read,
    file: &str,
    into: &mut Rows<T>,
    errors: &mut Vec<ImportError>,
) -> Result<()> {
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = csv
        .headers()
        .with_context(|| format!("{file}: cannot read the header row"))?
        .clone();
    for record in csv.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                errors.push(ImportError {
                    origin: origin(file, line),
                    field: "-".into(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        match record.deserialize::<T>(Some(&headers)) {
            Ok(row) => into.push((origin(file, line), row)),
            Err(e) => errors.push(csv_error(file, line, &headers, &e)),
        }
    }
    Ok(())
}

fn csv_error(file: &str, line: usize, headers: &csv::StringRecord, e: &csv::Error) -> ImportError {
    let (field, message) = match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let field = err
                .field()
                .and_then(|i| headers.get(i as usize))
                .unwrap_or("-");
            (field.to_string(), err.kind().to_string())
        }
        _ => ("-".to_string(), e.to_string()),
    };
    ImportError {
        origin: origin(file, line),
        field,
        message,
    }
}

/// A JSON file: an array of objects; a record's "line" is its position in the array.
fn json_rows<T: DeserializeOwned>(
    reader: impl Read,
    file: &str,
    into: &mut Rows<T>,
    errors: &mut Vec<ImportError>,
) -> Result<()> {
    let values: Vec<serde_json::Value> = serde_json::from_reader(reader)
        .with_context(|| format!("{file}: not a JSON array of objects"))?;
    for (i, value) in values.into_iter().enumerate() {
        match serde_json::from_value::<T>(value) {
            Ok(row) => into.push((origin(file, i + 1), row)),
            Err(e) => errors.push(ImportError {
                origin: origin(file, i + 1),
                field: "-".into(),
                message: e.to_string(),
            }),
        }
    }
    Ok(())
}
