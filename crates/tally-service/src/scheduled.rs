//! The scheduled reports the `write_reports` task leaves in `reports/<date>/` under the data
//! directory.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use tally_report::ScheduledReport;

use crate::{Result, Service, ServiceError};

/// Where scheduled reports go and which are written.
#[derive(Debug, Clone, Default)]
pub struct ReportOutput {
    /// `reports/` under the data directory; `None` writes nothing.
    pub dir: Option<PathBuf>,
    pub scheduled: Vec<ScheduledReport>,
}

/// Writes each scheduled report, in its default parameters, to `reports/<date>/` (replacing
/// that day's file), then deletes dated folders older than `keep_days`. Returns files written.
pub(crate) async fn write_scheduled(
    service: &Service,
    now: DateTime<Utc>,
    keep_days: i32,
) -> Result<i64> {
    let Some(root) = &service.reports.dir else {
        return Err(ServiceError::Invalid(
            "this server has no data directory to write reports to".into(),
        ));
    };
    let day_dir = root.join(now.date_naive().to_string());
    // Reports name people and their use of programs: owner-only, like the database.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(&day_dir)
        .map_err(|e| io_error(&day_dir, e))?;
    let mut written = 0;
    for scheduled in &service.reports.scheduled {
        let built = crate::reports::make(service, scheduled.name, &[], now).await?;
        let bytes = tally_report::render(&built, scheduled.format)?;
        write_atomically(&day_dir.join(scheduled.file_name()), &bytes)?;
        written += 1;
    }
    delete_old_days(
        root,
        now.date_naive() - chrono::Duration::days(i64::from(keep_days)),
    )?;
    Ok(written)
}

/// Readers of the folder never see half a report: it is written aside, then renamed.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).map_err(|e| io_error(&partial, e))?;
    std::fs::rename(&partial, path).map_err(|e| io_error(path, e))
}

/// Removes `YYYY-MM-DD` folders dated before `before`; anything else there is left alone.
fn delete_old_days(root: &Path, before: NaiveDate) -> Result<()> {
    let entries = std::fs::read_dir(root).map_err(|e| io_error(root, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let dated = name
            .to_str()
            .and_then(|n| NaiveDate::parse_from_str(n, "%Y-%m-%d").ok());
        if dated.is_some_and(|d| d < before) {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(|e| io_error(&path, e))?;
            tracing::info!(folder = %path.display(), "deleted aged reports");
        }
    }
    Ok(())
}

fn io_error(path: &Path, e: std::io::Error) -> ServiceError {
    ServiceError::Internal(format!(
        "cannot write reports at {}: {e}; check the data directory's permissions and free space",
        path.display()
    ))
}
