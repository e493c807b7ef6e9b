//! Import: the files `tally import` takes, uploaded (multipart, bounded), checked first as
//! `tally import --check` checks them (nothing written; each problem shown by file, line and
//! field), then loaded in one audited transaction once the operator asks. A checked upload is
//! kept in memory for a short while, for its operator only, so loading it needs no second
//! upload; it is checked again when loaded, since the database may have changed meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use tally_core::import::{ImportError, ImportOutcome, Kind};
use tally_service::export_files;
use tally_service::import_files::{self, Checked, Reading};

use crate::forms::{csrf_input, MAX_FIELD_CHARS};
use crate::session::Signed;
use crate::{layout, WebError, WebState};

/// The largest upload the import takes, all files together.
pub const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;
/// The most files one upload may hold (one per kind, and some to spare).
pub const MAX_FILES: usize = 16;
/// Problems shown at most; the count of the rest follows.
const SHOWN_PROBLEMS: usize = 200;
/// Checked uploads kept at once, and for how long.
const MAX_PENDING: usize = 4;
const PENDING_FOR: Duration = Duration::from_secs(15 * 60);

/// One uploaded file: its name (what it holds) and its bytes.
type File = (String, Vec<u8>);

struct PendingUpload {
    operator: String,
    files: Vec<File>,
    at: Instant,
    /// The order uploads were kept in, so the oldest goes first even within one clock tick.
    seq: u64,
}

#[derive(Default)]
struct Kept {
    uploads: HashMap<String, PendingUpload>,
    next: u64,
}

/// Checked uploads waiting to be loaded, by a random id.
#[derive(Clone, Default)]
pub struct Pending(Arc<Mutex<Kept>>);

impl Pending {
    fn keep(&self, operator: &str, files: Vec<File>) -> String {
        let mut kept = self.0.lock().expect("pending uploads");
        let seq = kept.next;
        kept.next += 1;
        let map = &mut kept.uploads;
        map.retain(|_, p| p.at.elapsed() < PENDING_FOR);
        while map.len() >= MAX_PENDING {
            let oldest = map
                .iter()
                .min_by_key(|(_, p)| p.seq)
                .map(|(k, _)| k.clone());
            map.remove(&oldest.expect("not empty"));
        }
        let id = crate::session::random_hex();
        let upload = PendingUpload {
            operator: operator.to_string(),
            files,
            at: Instant::now(),
            seq,
        };
        map.insert(id.clone(), upload);
        id
    }

    /// The files kept under `id` for `operator`, taken out.
    fn take(&self, id: &str, operator: &str) -> Option<Vec<File>> {
        let map = &mut self.0.lock().expect("pending uploads").uploads;
        let fresh = map
            .get(id)
            .is_some_and(|p| p.operator == operator && p.at.elapsed() < PENDING_FOR);
        fresh.then(|| map.remove(id).expect("present").files)
    }
}

fn kinds() -> String {
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    names.join(", ")
}

fn upload_form(signed: &Signed) -> Markup {
    html! {
        form #import-form method="post" action="/import" enctype="multipart/form-data" {
            (csrf_input(&signed.csrf()))
            div.field {
                label for="files" { "Files (CSV or JSON)" }
                input #files type="file" name="files" multiple required accept=".csv,.json";
            }
            p.hint { "Name each file after what it holds, ending in one of: " (kinds())
                ". At most " (MAX_FILES) " files and " (MAX_UPLOAD_BYTES / 1024 / 1024) " MiB together." }
            button type="submit" { "Check the files" }
        }
    }
}

pub async fn page(signed: Signed) -> Response {
    let body = html! {
        p { "Load org nodes, devices, users, applications, installations, usage sessions, licenses and custom values from the files "
            code { "tally import" } " takes (see docs/import-format.md). The files are checked first and nothing is written until you load them." }
        @if signed.is_admin() { (upload_form(&signed)) }
        @else { p.muted #read-only { "Importing changes the estate: the auditor role can read the export below but not import." } }
        (export_links())
    };
    layout::page(&signed, "/import", "Import and export", body).into_response()
}

fn export_links() -> Markup {
    html! {
        h2 { "Export" }
        p { "The stored estate in the formats the import reads (CSV cells made safe for spreadsheets)." }
        ul #export {
            @for k in Kind::ALL {
                li { (k.name()) ": "
                    a href={"/export/" (k.name()) ".csv"} download { "CSV" } " · "
                    a href={"/export/" (k.name()) ".json"} download { "JSON" } }
            }
        }
    }
}

/// A multipart problem as the operator's error: too large is 413, the rest 400.
fn bad_upload(e: axum::extract::multipart::MultipartError) -> WebError {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => WebError::TooLarge(format!(
            "the upload is over {} MiB; split it into smaller files",
            MAX_UPLOAD_BYTES / 1024 / 1024
        )),
        _ => WebError::BadRequest(format!("the upload could not be read: {}", e.body_text())),
    }
}

/// `C:\files\devices.csv` → `devices.csv`.
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// The upload's CSRF token and files, each bounded.
async fn read_upload(mut multipart: Multipart) -> Result<(String, Vec<File>), WebError> {
    let (mut csrf, mut files) = (String::new(), Vec::new());
    while let Some(field) = multipart.next_field().await.map_err(bad_upload)? {
        match field.name().unwrap_or_default() {
            "csrf" => csrf = field.text().await.map_err(bad_upload)?,
            "files" => {
                let name = base_name(field.file_name().unwrap_or_default()).to_string();
                let bytes = field.bytes().await.map_err(bad_upload)?;
                if name.is_empty() && bytes.is_empty() {
                    continue;
                }
                if name.is_empty() || name.chars().count() > MAX_FIELD_CHARS {
                    return Err(WebError::BadRequest(format!(
                        "each file needs a name of 1 to {MAX_FIELD_CHARS} characters"
                    )));
                }
                files.push((name, bytes.to_vec()));
                if files.len() > MAX_FILES {
                    return Err(WebError::BadRequest(format!(
                        "at most {MAX_FILES} files in one upload"
                    )));
                }
            }
            other => {
                return Err(WebError::BadRequest(format!(
                    "unexpected field {:?}",
                    other.chars().take(40).collect::<String>()
                )))
            }
        }
    }
    Ok((csrf, files))
}

/// Reads every file; a file that cannot be read at all is a problem of that file.
fn read_files(files: &[File]) -> Reading {
    let mut reading = Reading::default();
    for (name, bytes) in files {
        if let Err(e) = reading.read(name, bytes.as_slice()) {
            reading.errors.push(ImportError {
                origin: tally_core::import::Origin {
                    file: name.as_str().into(),
                    line: 0,
                },
                field: "file".into(),
                message: e.to_string(),
            });
        }
    }
    reading
}

pub async fn check(
    State(state): State<WebState>,
    signed: Signed,
    multipart: Multipart,
) -> Result<Response, WebError> {
    let (csrf, files) = read_upload(multipart).await?;
    signed.may_change(&csrf)?;
    if files.is_empty() {
        return Err(WebError::BadRequest("choose at least one file".into()));
    }
    let mut reading = read_files(&files);
    let rows = reading.rows();
    let checked = import_files::check(&state.service, &mut reading).await?;
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    if !checked.errors.is_empty() {
        let body = html! {
            p.error role="alert" #import-refused { (counted(checked.errors.len(), "problem")) " found in "
                (names.join(", ")) "; nothing was written. Fix the rows named below and check again." }
            (problems_table("problems", &checked.errors))
            (warnings(&checked))
            (upload_form(&signed))
        };
        let page = layout::page(&signed, "/import", "Import: problems found", body);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let id = state.uploads.keep(signed.name(), files);
    let body = html! {
        p #import-checked { (counted(rows as usize, "row")) " in " (names.join(", ")) " checked: no problems. Nothing is written yet." }
        (warnings(&checked))
        form #load-form method="post" action="/import/load" {
            (csrf_input(&signed.csrf()))
            input type="hidden" name="upload" value=(id);
            button type="submit" { "Load " (counted(rows as usize, "row")) }
        }
        p { a href="/import" { "Start again with other files" } }
    };
    Ok(layout::page(&signed, "/import", "Import: checked", body).into_response())
}

#[derive(Deserialize)]
pub struct LoadForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    upload: String,
}

pub async fn load(
    State(state): State<WebState>,
    signed: Signed,
    Form(form): Form<LoadForm>,
) -> Result<Response, WebError> {
    signed.may_change(&form.csrf)?;
    let files = state.uploads.take(&form.upload, signed.name()).ok_or_else(|| {
        WebError::NotFound(
            "that upload is no longer kept (it was loaded, or is over 15 minutes old); upload the files again".into(),
        )
    })?;
    let reading = read_files(&files);
    let (checked, outcome) =
        import_files::load(&state.service, signed.name(), "import", reading).await?;
    let Some(outcome) = outcome else {
        let body = html! {
            p.error role="alert" #import-refused { "The database changed since the check: " (counted(checked.errors.len(), "problem")) " found; nothing was written." }
            (problems_table("problems", &checked.errors))
            (upload_form(&signed))
        };
        let page = layout::page(&signed, "/import", "Import: problems found", body);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let body = html! {
        p #import-done { (loaded(&outcome)) "." }
        p { a href="/devices" { "See the devices" } " · " a href="/applications" { "the applications" } " · " a href="/import" { "import more" } }
    };
    Ok(layout::page(&signed, "/import", "Import: loaded", body).into_response())
}

fn counted(n: usize, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

/// What was loaded, in words: `Imported 3 devices and 1 license`.
fn loaded(o: &ImportOutcome) -> String {
    let parts: Vec<String> = [
        (o.org_nodes, "org node"),
        (o.devices, "device"),
        (o.users, "user"),
        (o.applications, "application"),
        (o.installations, "installation"),
        (o.sessions, "usage session"),
        (o.licenses, "license"),
        (o.custom_values, "custom value"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| counted(n as usize, what))
    .collect();
    match parts.split_last() {
        None => "Imported nothing (the files hold no rows)".into(),
        Some((last, [])) => format!("Imported {last}"),
        Some((last, rest)) => format!("Imported {} and {last}", rest.join(", ")),
    }
}

fn problems_table(id: &str, items: &[ImportError]) -> Markup {
    html! {
        table id=(id) {
            thead { tr { th { "File" } th.num { "Line" } th { "Field" } th { "Problem" } } }
            tbody {
                @for e in items.iter().take(SHOWN_PROBLEMS) {
                    tr { td { (e.origin.file) } td.num { @if e.origin.line > 0 { (e.origin.line) } @else { "—" } } td { (e.field) } td { (e.message) } }
                }
            }
        }
        @if items.len() > SHOWN_PROBLEMS { p { "… and " (items.len() - SHOWN_PROBLEMS) " more." } }
    }
}

fn warnings(checked: &Checked) -> Markup {
    html! {
        @if !checked.warnings.is_empty() {
            h2 { "Warnings (these do not stop the import)" }
            (problems_table("warnings", &checked.warnings))
        }
    }
}

/// `/export/devices.csv`: every stored row of a kind, as a download in the import's format.
pub async fn export(
    State(state): State<WebState>,
    signed: Signed,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Result<Response, WebError> {
    let missing = || WebError::NotFound(format!("no export {file:?}; the kinds are {}", kinds()));
    let (name, ext) = file.rsplit_once('.').ok_or_else(missing)?;
    let kind = export_files::kind_named(name).ok_or_else(missing)?;
    let format = match ext {
        "csv" => export_files::Format::Csv,
        "json" => export_files::Format::Json,
        _ => return Err(missing()),
    };
    let store = state.service.store();
    let (bytes, rows) = export_files::export_kind(store, kind, format, Vec::new(), &|_| {}).await?;
    tracing::info!(operator = %signed.name(), kind = name, rows, "web console: export");
    Ok(crate::download(&file, content_type(format), bytes))
}

fn content_type(format: export_files::Format) -> &'static str {
    match format {
        export_files::Format::Csv => "text/csv; charset=utf-8",
        export_files::Format::Json => "application/json",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_keeps_its_base_name_only() {
        assert_eq!(base_name(r"C:\files\devices.csv"), "devices.csv");
        assert_eq!(base_name("../../etc/users.csv"), "users.csv");
        assert_eq!(base_name("licenses.json"), "licenses.json");
    }

    #[test]
    fn what_was_loaded_reads_as_a_sentence() {
        let mut o = ImportOutcome::default();
        assert_eq!(loaded(&o), "Imported nothing (the files hold no rows)");
        o.devices = 3;
        assert_eq!(loaded(&o), "Imported 3 devices");
        o.licenses = 1;
        o.users = 2;
        assert_eq!(loaded(&o), "Imported 3 devices, 2 users and 1 license");
    }

    #[test]
    fn a_checked_upload_is_taken_once_by_its_operator() {
        let pending = Pending::default();
        let id = pending.keep("ann", vec![("devices.csv".into(), b"host_name\n".to_vec())]);
        assert!(pending.take(&id, "bob").is_none(), "another operator's");
        assert_eq!(pending.take(&id, "ann").unwrap().len(), 1);
        assert!(pending.take(&id, "ann").is_none(), "taken once");
        let ids: Vec<String> = (0..6).map(|_| pending.keep("ann", Vec::new())).collect();
        assert!(
            pending.take(&ids[0], "ann").is_none(),
            "the oldest made room"
        );
        assert!(pending.take(&ids[5], "ann").is_some());
    }
}
