//! Applications and licenses added and removed one at a time, with the same checks `tally
//! import` runs on a file, so a row refused in a file is refused here with the same words.
//! Each change is stored with its audit entry in one transaction.

use chrono::{DateTime, Utc};
use tally_core::import::{ApplicationRow, Batch, LicenseRow, Origin};
use tally_core::License;
use tally_store::{AppRecord, AuditOf, ImportOutcome, Store};

use crate::audit::entry;
use crate::{Result, Service, ServiceError};

/// Runs the import checks on a one-row batch; the refusal names each field at fault.
async fn checked(store: &dyn Store, batch: &Batch) -> Result<()> {
    let known = store.import_known().await?;
    let problems = tally_core::import::validate(batch, &known, Utc::now());
    if problems.is_empty() {
        return Ok(());
    }
    let reasons: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect();
    Err(ServiceError::Invalid(reasons.join("; ")))
}

/// Where a single row comes from, as the import's messages name it.
fn request() -> Origin {
    Origin {
        file: "request".into(),
        line: 1,
    }
}

/// Checks and imports a one-row batch, with the audit entry `audit` makes of its outcome.
async fn import_one(
    service: &Service,
    batch: Batch,
    now: DateTime<Utc>,
    audit: AuditOf<'_, ImportOutcome>,
) -> Result<ImportOutcome> {
    let store = service.store();
    checked(store, &batch).await?;
    Ok(store
        .import(&batch, service.site(), now, &|_| {}, audit)
        .await?)
}

/// Adds an application, or changes the one of that name, as `actor`; returns it as stored.
pub async fn put_application(
    service: &Service,
    actor: &str,
    row: &ApplicationRow,
    now: DateTime<Utc>,
) -> Result<AppRecord> {
    let applications = vec![(request(), row.clone())];
    let batch = Batch {
        applications,
        ..Default::default()
    };
    // The batch holds one application, so the outcome holds its one id.
    let audit = |outcome: &ImportOutcome| {
        let target = format!("application:{}", outcome.application_ids[0]);
        entry(actor, "application.put", target, row)
    };
    import_one(service, batch, now, Some(&audit)).await?;
    service
        .store()
        .applications()
        .await?
        .into_iter()
        .find(|a| a.application.name == row.name)
        .ok_or_else(|| {
            let name = &row.name;
            ServiceError::Internal(format!("application {name:?} vanished after adding it"))
        })
}

/// Adds a license, as `actor`; returns it as stored.
pub async fn add_license(
    service: &Service,
    actor: &str,
    row: &LicenseRow,
    now: DateTime<Utc>,
) -> Result<License> {
    let licenses = vec![(request(), row.clone())];
    let batch = Batch {
        licenses,
        ..Default::default()
    };
    // The batch holds one license, so the outcome holds its one id.
    let audit = |outcome: &ImportOutcome| {
        let target = format!("license:{}", outcome.license_ids[0]);
        entry(actor, "license.add", target, row)
    };
    let outcome = import_one(service, batch, now, Some(&audit)).await?;
    let id = outcome.license_ids.first().copied();
    service
        .store()
        .licenses()
        .await?
        .into_iter()
        .find(|l| Some(l.id) == id)
        .ok_or_else(|| ServiceError::Internal("the license vanished after adding it".into()))
}

/// Deletes an application with its recognition rules, sessions and snapshots; refused while
/// it has licenses, so none is orphaned. `actor` is who asked, for the audit log.
pub async fn delete_application(store: &dyn Store, actor: &str, id: i64) -> Result<()> {
    let licensed: Vec<i64> = store
        .licenses()
        .await?
        .iter()
        .filter(|l| l.application_id == id)
        .map(|l| l.id)
        .collect();
    if !licensed.is_empty() {
        return Err(ServiceError::Invalid(format!(
            "application {id} still has licenses {licensed:?}; remove them first (tally licenses remove ID)"
        )));
    }
    let audit = entry(actor, "application.delete", format!("application:{id}"), ());
    match store.delete_application(id, Some(&audit)).await? {
        true => Ok(()),
        false => Err(ServiceError::NotFound(format!(
            "no application {id}; see tally apps"
        ))),
    }
}

/// Deletes a license, as `actor`.
pub async fn delete_license(store: &dyn Store, actor: &str, id: i64) -> Result<()> {
    let audit = entry(actor, "license.delete", format!("license:{id}"), ());
    match store.delete_license(id, Some(&audit)).await? {
        true => Ok(()),
        false => Err(ServiceError::NotFound(format!(
            "no license {id}; see tally licenses"
        ))),
    }
}
