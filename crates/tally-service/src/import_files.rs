//! Reading and loading the files `tally import` takes, shared by the CLI and the web console's
//! upload: each file named for what it holds (`devices.csv`, `2026-licenses.json`), every row
//! kept with its file and line so that each problem can be shown where it is, every row checked
//! against the database before anything is written, and then all of it loaded in one
//! transaction with its audit entry.

use std::io::Read;
use std::sync::Arc;

use chrono::Utc;
use serde::de::DeserializeOwned;
use tally_core::import::{Batch, ImportError, ImportOutcome, Kind, Origin, Pool, Row, Rows};

use crate::audit::entry;
use crate::{Result, Service, ServiceError};

/// What a file holds and whether it is JSON (else CSV), from its name; or why the name will not
/// do.
pub fn kind_of(file_name: &str) -> Result<(Kind, bool)> {
    let path = std::path::Path::new(file_name);
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    let Some(kind) = Kind::of_file(stem) else {
        return Err(ServiceError::Invalid(format!(
            "{file_name}: name the file after what it holds, ending in one of: {}",
            names.join(", ")
        )));
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("json") => Ok((kind, true)),
        Some(e) if e.eq_ignore_ascii_case("csv") => Ok((kind, false)),
        _ => Err(ServiceError::Invalid(format!(
            "{file_name}: give a .csv or a .json file"
        ))),
    }
}

/// Every file's rows, the names they share, and the problems found reading them.
#[derive(Default)]
pub struct Reading {
    pub batch: Batch,
    pool: Pool,
    pub errors: Vec<ImportError>,
}

impl Reading {
    /// Reads one file, `file_name` saying what it holds (see [`kind_of`]); a row that cannot be
    /// read becomes an error naming its line and field, a file that cannot be read at all (a
    /// wrong name, no header row, not a JSON array) an `Invalid` error.
    pub fn read(&mut self, file_name: &str, reader: impl Read) -> Result<()> {
        let (kind, json) = kind_of(file_name)?;
        let mut source = Source {
            file: file_name.into(),
            json,
            pool: &mut self.pool,
            errors: &mut self.errors,
        };
        let batch = &mut self.batch;
        match kind {
            Kind::OrgNodes => source.rows(reader, &mut batch.org_nodes),
            Kind::Devices => source.rows(reader, &mut batch.devices),
            Kind::Users => source.rows(reader, &mut batch.users),
            Kind::Applications => source.rows(reader, &mut batch.applications),
            Kind::Installations => source.rows(reader, &mut batch.installations),
            Kind::UsageSessions => source.rows(reader, &mut batch.sessions),
            Kind::Licenses => source.rows(reader, &mut batch.licenses),
            Kind::CustomValues => source.rows(reader, &mut batch.custom_values),
        }
    }

    /// How many rows were read.
    pub fn rows(&self) -> u64 {
        let b = &self.batch;
        (b.org_nodes.len()
            + b.devices.len()
            + b.users.len()
            + b.applications.len()
            + b.installations.len()
            + b.sessions.len()
            + b.licenses.len()
            + b.custom_values.len()) as u64
    }
}

/// The files' problems and warnings against the database as it is; nothing is written.
#[derive(Debug, Default)]
pub struct Checked {
    pub errors: Vec<ImportError>,
    pub warnings: Vec<ImportError>,
}

/// Checks what `reading` holds against the service's database (`--check`): the reading's own
/// problems when it has any, else the import's checks; then the warnings. Names are made
/// pseudonyms first when the site keeps them so, so the rows refer to users as stored.
pub async fn check(service: &Service, reading: &mut Reading) -> Result<Checked> {
    if let Some(p) = service.pseudonyms() {
        p.import_batch(&mut reading.batch);
    }
    let known = service.store().import_known().await?;
    let errors = match reading.errors.is_empty() {
        true => tally_core::import::validate(&reading.batch, &known, Utc::now()),
        false => std::mem::take(&mut reading.errors),
    };
    let warnings = tally_core::import::warnings(&reading.batch, &known);
    Ok(Checked { errors, warnings })
}

/// Checks `reading` and, when it has no problem, loads it into the service's site in one
/// transaction, audited as `action` (`import`, or what the caller did through it) by `actor`. Returns the checks' findings and what was
/// loaded (`None` when there were problems and nothing was written).
pub async fn load(
    service: &Service,
    actor: &str,
    action: &str,
    mut reading: Reading,
) -> Result<(Checked, Option<ImportOutcome>)> {
    let checked = check(service, &mut reading).await?;
    if !checked.errors.is_empty() {
        return Ok((checked, None));
    }
    let audit = |o: &ImportOutcome| entry(actor, action, "import".to_string(), o);
    let outcome = service
        .store()
        .import(
            &reading.batch,
            service.site(),
            Utc::now(),
            &|_| {},
            Some(&audit),
        )
        .await?;
    Ok((checked, Some(outcome)))
}

/// One file being read: its rows are kept with their line, their names shared through the
/// import's pool, and a row that cannot be read becomes an error naming the line and field.
struct Source<'a> {
    file: Arc<str>,
    json: bool,
    pool: &'a mut Pool,
    errors: &'a mut Vec<ImportError>,
}

fn invalid(message: String) -> ServiceError {
    ServiceError::Invalid(message)
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
            .map_err(|e| invalid(format!("{}: cannot read the header row: {e}", self.file)))?
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
            .map_err(|e| invalid(format!("{}: not a JSON array of objects: {e}", self.file)))
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
