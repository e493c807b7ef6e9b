//! The scheduled reports the `write_reports` task has written so far (`reports/<date>/` under
//! the data directory), listed and read back for the web console. Only files in dated folders
//! with a report's extension are offered, and a name is looked up in the listing rather than
//! joined to a path, so no request can reach another file.

use chrono::NaiveDate;

use crate::{Result, Service, ServiceError};

/// One report file as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenReport {
    pub day: NaiveDate,
    pub file: String,
    pub bytes: u64,
}

const EXTENSIONS: [&str; 4] = ["pdf", "html", "csv", "json"];

/// Every report written so far, newest day first; none when the server writes no reports.
pub fn list(service: &Service) -> Result<Vec<WrittenReport>> {
    let Some(root) = &service.reports.dir else {
        return Ok(Vec::new());
    };
    let Ok(days) = std::fs::read_dir(root) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for day_dir in days.flatten() {
        let name = day_dir.file_name();
        let Some(day) = name
            .to_str()
            .and_then(|n| NaiveDate::parse_from_str(n, "%Y-%m-%d").ok())
        else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(day_dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let file = f.file_name().to_string_lossy().into_owned();
            let known = file
                .rsplit_once('.')
                .is_some_and(|(_, ext)| EXTENSIONS.contains(&ext));
            let bytes = f.metadata().map(|m| m.len()).unwrap_or(0);
            if known && f.path().is_file() {
                found.push(WrittenReport { day, file, bytes });
            }
        }
    }
    found.sort_by(|a, b| b.day.cmp(&a.day).then_with(|| a.file.cmp(&b.file)));
    Ok(found)
}

/// The bytes of the report `file` written on `day`, when the listing has it.
pub fn read(service: &Service, day: NaiveDate, file: &str) -> Result<Vec<u8>> {
    let missing = || ServiceError::NotFound(format!("no report {file} written on {day}"));
    let listed = list(service)?
        .into_iter()
        .any(|r| r.day == day && r.file == file);
    let root = service.reports.dir.as_ref().filter(|_| listed);
    let path = root.ok_or_else(missing)?.join(day.to_string()).join(file);
    std::fs::read(&path).map_err(|e| {
        ServiceError::Internal(format!("cannot read the report {}: {e}", path.display()))
    })
}
