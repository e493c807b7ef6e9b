//! `tally import`: loads org nodes, devices, users, applications, installations, usage
//! sessions and licenses from CSV or JSON files straight into the database (run it where the
//! server's database is reachable). Every file is read and every row checked first; only
//! then is anything written, in one transaction.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::de::DeserializeOwned;
use tally_core::import::{Batch, ImportError, Kind, Origin, Pool, Row, Rows};
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
    /// Store account and full names as pseudonyms, as a server with the same setting does
    /// (docs/privacy.md).
    #[arg(long, env = "TALLY_PSEUDONYMIZE_USERS")]
    pseudonymize_users: bool,
    /// The site's pseudonym key file [default: pseudonym.key in the data directory].
    #[arg(long, env = "TALLY_PSEUDONYM_KEY_FILE")]
    pseudonym_key_file: Option<PathBuf>,
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
    let mut reading = Reading::default();
    for path in &args.files {
        read_file(path, &mut reading)?;
    }
    let Reading {
        mut batch,
        mut errors,
        ..
    } = reading;
    let store = args.database.open().await?;
    ensure_site(store.as_ref(), &site, !args.check).await?;
    // Before the checks, so the rows refer to users as the database holds them.
    if args.pseudonymize_users {
        let key = match &args.pseudonym_key_file {
            Some(path) => path.clone(),
            None => args.database.data_dir.join("pseudonym.key"),
        };
        crate::pseudonyms::load_or_create(&key)?.import_batch(&mut batch);
    }
    if errors.is_empty() {
        errors =
            tally_core::import::validate(&batch, &store.import_known().await?, chrono::Utc::now());
    }
    report(&errors)?;
    if args.check {
        eprintln!("{} rows checked; nothing loaded (--check)", total(&batch));
        return Ok(());
    }
    let bar = bar(total(&batch), "loading");
    let progress = |done: u64| bar.set_position(done);
    let outcome = store
        .import(&batch, &site, chrono::Utc::now(), &progress, None)
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
        eprintln!("{}", tally_core::escape::controls(&e.to_string()));
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

fn read_file(path: &Path, into: &mut Reading) -> Result<()> {
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
    let mut source = Source {
        file: path.display().to_string().into(),
        json,
        pool: &mut into.pool,
        errors: &mut into.errors,
    };
    let batch = &mut into.batch;
    match kind {
        Kind::OrgNodes => source.rows(reader, &mut batch.org_nodes)?,
        Kind::Devices => source.rows(reader, &mut batch.devices)?,
        Kind::Users => source.rows(reader, &mut batch.users)?,
        Kind::Applications => source.rows(reader, &mut batch.applications)?,
        Kind::Installations => source.rows(reader, &mut batch.installations)?,
        Kind::UsageSessions => source.rows(reader, &mut batch.sessions)?,
        Kind::Licenses => source.rows(reader, &mut batch.licenses)?,
        Kind::CustomValues => source.rows(reader, &mut batch.custom_values)?,
    }
    bar.finish_and_clear();
    Ok(())
}

/// Every file's rows, the names they share, and the problems found reading them.
#[derive(Default)]
struct Reading {
    batch: Batch,
    pool: Pool,
    errors: Vec<ImportError>,
}

/// One file being read: its rows are kept with their line, their names shared through the
/// import's pool, and a row that cannot be read becomes an error naming the line and field.
struct Source<'a> {
    file: Arc<str>,
    json: bool,
    pool: &'a mut Pool,
    errors: &'a mut Vec<ImportError>,
}

impl Source<'_> {
    fn rows<T: DeserializeOwned + Row>(
        &mut self,
        reader: impl Read,
        into: &mut Rows<T>,
    ) -> Result<()> {
        match self.json {
            true => self.json_rows(reader, into),
            false => self.csv_rows(reader, into),
        }
    }

    fn origin(&self, line: usize) -> Origin {
        Origin {
            file: self.file.clone(),
            line,
        }
    }

    fn keep<T: Row>(&mut self, line: usize, mut row: T, into: &mut Rows<T>) {
        row.share_names(self.pool);
        into.push((self.origin(line), row));
    }

    fn fail(&mut self, line: usize, field: &str, message: String) {
        self.errors.push(ImportError {
            origin: self.origin(line),
            field: field.into(),
            message,
        });
    }

    /// A CSV file: a header row naming the fields, then one row per record; empty cells are
    /// absent values.
    fn csv_rows<T: DeserializeOwned + Row>(
        &mut self,
        reader: impl Read,
        into: &mut Rows<T>,
    ) -> Result<()> {
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers = csv
            .headers()
            .with_context(|| format!("{}: cannot read the header row", self.file))?
            .clone();
        for record in csv.records() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                    self.fail(line, "-", e.to_string());
                    continue;
                }
            };
            let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
            match record.deserialize::<T>(Some(&headers)) {
                Ok(row) => self.keep(line, row, into),
                Err(e) => {
                    let (mut field, message) = csv_error(&headers, &e);
                    if field == "-" {
                        field = refused_column::<T>(&headers, &record, &message).unwrap_or(field);
                    }
                    self.fail(line, &field, message);
                }
            }
        }
        Ok(())
    }

    /// A JSON file: an array of objects, read one object at a time so that a large file is
    /// never held whole; a record's "line" is its position in the array.
    fn json_rows<T: DeserializeOwned + Row>(
        &mut self,
        reader: impl Read,
        into: &mut Rows<T>,
    ) -> Result<()> {
        let mut json = serde_json::Deserializer::from_reader(reader);
        let each = EachObject { source: self, into };
        serde::de::DeserializeSeed::deserialize(each, &mut json)
            .and_then(|()| json.end())
            .with_context(|| format!("{}: not a JSON array of objects", self.file))
    }
}

/// Hands each element of a JSON array to its row type as it is read.
struct EachObject<'s, 'a, T> {
    source: &'s mut Source<'a>,
    into: &'s mut Rows<T>,
}

impl<'de, T: DeserializeOwned + Row> serde::de::DeserializeSeed<'de> for EachObject<'_, '_, T> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: DeserializeOwned + Row> serde::de::Visitor<'de> for EachObject<'_, '_, T> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut line = 0;
        while let Some(Entries(entries)) = seq.next_element::<Entries>()? {
            line += 1;
            match json_row::<T>(entries) {
                Ok(row) => self.source.keep(line, row, self.into),
                Err((field, message)) => self.source.fail(line, &field, message),
            }
        }
        Ok(())
    }
}

/// One JSON object's members in order, duplicates kept, so that a key given twice is refused
/// (as the API refuses it) rather than silently taking the last value.
struct Entries(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = Entries;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Entries, M::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Members)
    }
}

/// The row an object's members make, or the field at fault and why: a duplicate key, or the
/// member serde could not read (named by its path, e.g. `installed_on`).
fn json_row<T: DeserializeOwned>(
    entries: Vec<(String, serde_json::Value)>,
) -> std::result::Result<T, (String, String)> {
    let mut object = serde_json::Map::new();
    for (key, value) in entries {
        if object.contains_key(&key) {
            return Err((key, "appears twice in this object".into()));
        }
        object.insert(key, value);
    }
    serde_path_to_error::deserialize(serde_json::Value::Object(object)).map_err(|e| {
        let field = match e.path().to_string() {
            path if path == "." => "-".to_string(),
            path => path,
        };
        (field, e.into_inner().to_string())
    })
}

fn csv_error(headers: &csv::StringRecord, e: &csv::Error) -> (String, String) {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let field = err
                .field()
                .and_then(|i| headers.get(i as usize))
                .unwrap_or("-");
            (field.to_string(), err.kind().to_string())
        }
        _ => ("-".to_string(), e.to_string()),
    }
}

/// The column a row's value was refused in when csv cannot say: csv names the column of a
/// number it cannot parse, but not of a value the row's type refuses (a bad date). It reads
/// columns in order and checks for missing ones only at the end, so the shortest prefix of
/// the row that fails with the same message ends with that column. Only refused rows pay.
fn refused_column<T: DeserializeOwned>(
    headers: &csv::StringRecord,
    record: &csv::StringRecord,
    message: &str,
) -> Option<String> {
    (1..=record.len().min(headers.len())).find_map(|k| {
        let head: csv::StringRecord = headers.iter().take(k).collect();
        let row: csv::StringRecord = record.iter().take(k).collect();
        match row.deserialize::<T>(Some(&head)) {
            Err(e) if csv_error(&head, &e).1 == message => headers.get(k - 1).map(str::to_string),
            _ => None,
        }
    })
}
