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
    /// Make a new database when there is none at --data-dir (or the SQLite --database-url),
    /// instead of refusing: a database no server reads is usually a wrong directory.
    #[arg(long)]
    create: bool,
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
    /// The database's URL: --database-url, or the SQLite file in --data-dir.
    pub fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("tally.db").display()))
    }

    /// Opens the database; a SQLite file that does not exist is refused unless `create`, since
    /// one made here would be read by no server.
    pub async fn open(&self, create: bool) -> Result<std::sync::Arc<dyn tally_store::Store>> {
        let url = self.url();
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = Path::new(path.split('?').next().unwrap_or(path));
            if !create && !path.exists() {
                bail!(
                    "there is no database at {}: run this where tally up keeps its data, or pass \
                     --data-dir or --database-url (TALLY_DATA_DIR, TALLY_DATABASE_URL); \
                     tally import --create makes a new one",
                    path.display()
                );
            }
        }
        tally_store::open(&url)
            .await
            .with_context(|| format!("cannot open the database {}", shown_url(&url)))
    }
}

/// A database URL as printed: without the password a PostgreSQL URL may carry.
pub fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) if !scheme.starts_with("sqlite") => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        _ => url.to_string(),
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
    let store = args.database.open(args.create).await?;
    ensure_site(store.as_ref(), &site, !args.check).await?;
    // Before the checks, so the rows refer to users as the database holds them.
    if args.pseudonymize_users {
        let key = match &args.pseudonym_key_file {
            Some(path) => path.clone(),
            None => args.database.data_dir.join("pseudonym.key"),
        };
        crate::pseudonyms::load_or_create(&key)?.import_batch(&mut batch);
    }
    let known = store.import_known().await?;
    if errors.is_empty() {
        errors = tally_core::import::validate(&batch, &known, chrono::Utc::now());
    }
    report(&errors)?;
    let warnings = tally_core::import::warnings(&batch, &known);
    for w in &warnings {
        eprintln!("warning: {}", tally_core::escape::controls(&w.to_string()));
    }
    if args.check {
        eprintln!(
            "{} checked; nothing loaded (--check)",
            counted(total(&batch), "row", "rows")
        );
        return Ok(());
    }
    let bar = bar(total(&batch), "loading");
    let progress = |done: u64| bar.set_position(done);
    let outcome = store
        .import(&batch, &site, chrono::Utc::now(), &progress, None)
        .await;
    bar.finish_and_clear();
    let outcome = outcome.context("the import failed and nothing was loaded")?;
    println!(
        "{} into {}",
        loaded(&outcome),
        shown_url(&args.database.url())
    );
    Ok(())
}

/// `3 devices`, `1 device`.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What an import wrote, as a sentence: `Imported 3 devices, 1 license and 2 users`.
fn loaded(o: &tally_core::import::ImportOutcome) -> String {
    let parts: Vec<String> = [
        (o.org_nodes, "org node", "org nodes"),
        (o.devices, "device", "devices"),
        (o.users, "user", "users"),
        (o.applications, "application", "applications"),
        (o.installations, "installation", "installations"),
        (o.sessions, "usage session", "usage sessions"),
        (o.licenses, "license", "licenses"),
        (o.custom_values, "custom value", "custom values"),
    ]
    .into_iter()
    .filter(|(n, _, _)| *n > 0)
    .map(|(n, one, many)| counted(n, one, many))
    .collect();
    match parts.split_last() {
        None => "Imported nothing (the files hold no rows)".to_string(),
        Some((last, [])) => format!("Imported {last}"),
        Some((last, rest)) => format!("Imported {} and {last}", rest.join(", ")),
    }
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
        .put_site(&tally_core::Site::central(
            code.clone(),
            format!("Tally site {code}"),
        ))
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
        "{} found; nothing was loaded. Fix the rows named above and run the import again",
        counted(errors.len() as u64, "problem", "problems")
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
                    let (field, message) = unequal(&headers, &e);
                    self.fail(line, &field, message);
                    continue;
                }
            };
            let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
            match record.deserialize::<T>(Some(&headers)) {
                Ok(row) => self.keep(line, row, into),
                Err(e) => {
                    for (field, message) in csv_problems::<T>(&headers, &record, &e) {
                        self.fail(line, &field, message);
                    }
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
                Err(problems) => {
                    for (field, message) in problems {
                        self.source.fail(line, &field, message);
                    }
                }
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

/// A field at fault and why.
type Problem = (String, String);

/// The row an object's members make, or every field at fault and why: a duplicate key, each
/// member serde cannot read (named by its path, e.g. `installed_on`), each missing field.
fn json_row<T: DeserializeOwned>(
    entries: Vec<(String, serde_json::Value)>,
) -> std::result::Result<T, Vec<Problem>> {
    let mut object = serde_json::Map::new();
    for (key, value) in entries {
        if object.contains_key(&key) {
            return Err(vec![(key, "appears twice in this object".into())]);
        }
        object.insert(key, value);
    }
    let read = |object: serde_json::Map<String, serde_json::Value>| {
        serde_path_to_error::deserialize::<_, T>(serde_json::Value::Object(object)).map_err(|e| {
            let path = e.path().to_string();
            (path, e.into_inner().to_string())
        })
    };
    let whole = match read(object.clone()) {
        Ok(row) => return Ok(row),
        Err(e) => e,
    };
    // Each member alone: its own problem, if any, besides the others' absence.
    let alone: Vec<(String, Option<String>)> = object
        .iter()
        .map(|(key, value)| {
            let problem = read([(key.clone(), value.clone())].into_iter().collect()).err();
            (key.clone(), problem.map(|(_, message)| message))
        })
        .collect();
    // The members without a problem together: what is missing.
    object.retain(|key, _| alone.iter().any(|(k, p)| k == key && fine_alone(p)));
    let rest = read(object).err().map(|(_, message)| message);
    Err(problems(alone, rest, whole))
}

/// Every field's problem: each field's own when read alone (`alone`: field, problem), the
/// field missing when the fields without a problem are read together (`rest`'s message; serde
/// names the first missing one only), and else the whole row's first problem (`whole`).
fn problems(
    alone: Vec<(String, Option<String>)>,
    rest: Option<String>,
    whole: Problem,
) -> Vec<Problem> {
    let mut found: Vec<Problem> = alone
        .iter()
        .cloned()
        .filter_map(|(field, problem)| Some((field, problem?)))
        .filter(|(_, message)| missing_field(message).is_none())
        .collect();
    let missing = rest.as_deref().and_then(missing_field);
    // A field present with a problem of its own is not missing as well.
    if let Some(missing) = missing.filter(|m| alone.iter().all(|(field, _)| field != m)) {
        found.push((
            missing.to_string(),
            "is required; add this column or member".into(),
        ));
    }
    if found.is_empty() {
        let (field, message) = whole;
        let field = match field.as_str() {
            "" | "." | "-" => "row".to_string(),
            _ => field,
        };
        found.push((field, message));
    }
    found
}

/// Whether a field read alone had no problem of its own (only other fields missing).
fn fine_alone(problem: &Option<String>) -> bool {
    problem
        .as_deref()
        .is_none_or(|p| missing_field(p).is_some())
}

/// The field serde's "missing field `x`" names.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// Every problem of a CSV row its type refused, each named by its column: csv names the column
/// of a number it cannot parse but not of a value the row's type refuses (a bad date), nor
/// what is missing, so each cell is read alone as well.
fn csv_problems<T: DeserializeOwned>(
    headers: &csv::StringRecord,
    record: &csv::StringRecord,
    e: &csv::Error,
) -> Vec<Problem> {
    let read = |pairs: &[(&str, &str)]| {
        let head: csv::StringRecord = pairs.iter().map(|(h, _)| *h).collect();
        let cells: csv::StringRecord = pairs.iter().map(|(_, v)| *v).collect();
        let problem = cells.deserialize::<T>(Some(&head)).err();
        problem.map(|e| csv_error(&head, &e).1)
    };
    let pairs: Vec<(&str, &str)> = headers.iter().zip(record.iter()).collect();
    let alone: Vec<(String, Option<String>)> = pairs
        .iter()
        .map(|&pair| (pair.0.to_string(), read(&[pair])))
        .collect();
    let good: Vec<(&str, &str)> = pairs
        .iter()
        .zip(&alone)
        .filter(|(_, (_, problem))| fine_alone(problem))
        .map(|(pair, _)| *pair)
        .collect();
    problems(alone, read(&good), csv_error(headers, e))
}

/// A row with more or fewer cells than the header names, by the columns it lacks.
fn unequal(headers: &csv::StringRecord, e: &csv::Error) -> Problem {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { len, .. } if (*len as usize) < headers.len() => {
            let missing: Vec<&str> = headers.iter().skip(*len as usize).collect();
            (
                missing[0].to_string(),
                format!(
                    "the row has {len} of the header's {} columns; missing: {}",
                    headers.len(),
                    missing.join(", ")
                ),
            )
        }
        csv::ErrorKind::UnequalLengths { len, .. } => (
            "row".to_string(),
            format!(
                "the row has {len} cells but the header names {} columns",
                headers.len()
            ),
        ),
        _ => ("row".to_string(), e.to_string()),
    }
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
