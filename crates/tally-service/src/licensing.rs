//! Applications and licenses added and removed one at a time, with the same checks `tally
//! import` runs on a file, so a row refused in a file is refused here with the same words.
//! Each change is stored with its audit entry in one transaction. Removing keeps the row,
//! marked removed, so positions on earlier days still see what existed then.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tally_api::{Expiring, LicensePatch, LicenseSaved, LicenseView};
use tally_core::import::{ApplicationRow, Batch, Known, LicenseRow, Origin};
use tally_core::License;
use tally_store::{AppRecord, ImportOutcome, Store};

use crate::audit::{entry, OrMissing};
use crate::{Result, Service, ServiceError};

fn no_license(id: i64) -> String {
    format!("no license {id}; see tally licenses")
}

/// Runs the import checks on a one-row batch against `known`; the refusal names each field at
/// fault.
pub(crate) fn checked(known: &Known, batch: &Batch) -> Result<()> {
    let problems = tally_core::import::validate(batch, known, Utc::now());
    if problems.is_empty() {
        return Ok(());
    }
    let reasons: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect();
    Err(ServiceError::Invalid(reasons.join("; ")))
}

/// What the checks warn about in a batch that passed them, as sentences for the answer.
fn warnings(known: &Known, batch: &Batch) -> Vec<String> {
    tally_core::import::warnings(batch, known)
        .into_iter()
        .map(|w| w.message)
        .collect()
}

/// Where a single row comes from, as the import's messages name it.
fn request() -> Origin {
    Origin {
        file: "request".into(),
        line: 1,
    }
}

/// Checks and imports a one-row batch as `actor`, audited as `action` on the target `target`
/// makes of the outcome (the batch holds one row, so the outcome holds its one id), with `row`
/// as the detail; returns the outcome and the checks' warnings.
async fn import_one<R: Serialize + Sync>(
    service: &Service,
    batch: Batch,
    now: DateTime<Utc>,
    (actor, action): (&str, &str),
    (row, target): (&R, fn(&ImportOutcome) -> String),
) -> Result<(ImportOutcome, Vec<String>)> {
    let store = service.store();
    let known = store.import_known().await?;
    checked(&known, &batch)?;
    let warnings = warnings(&known, &batch);
    let audit = |outcome: &ImportOutcome| entry(actor, action, target(outcome), row);
    let outcome = store
        .import(&batch, service.site(), now, &|_| {}, Some(&audit))
        .await?;
    Ok((outcome, warnings))
}

/// Adds an application, or changes the one of that name, as `actor`; returns it as stored.
pub async fn put_application(
    service: &Service,
    actor: &str,
    row: &ApplicationRow,
    now: DateTime<Utc>,
) -> Result<AppRecord> {
    let batch = Batch {
        applications: vec![(request(), row.clone())],
        ..Default::default()
    };
    let target = |o: &ImportOutcome| format!("application:{}", o.application_ids[0]);
    let audit = (actor, "application.put");
    import_one(service, batch, now, audit, (row, target)).await?;
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

/// Adds a license, as `actor`; returns it as stored, with what the checks warn about.
pub async fn add_license(
    service: &Service,
    actor: &str,
    row: &LicenseRow,
    now: DateTime<Utc>,
) -> Result<LicenseSaved> {
    let batch = Batch {
        licenses: vec![(request(), row.clone())],
        ..Default::default()
    };
    let target = |o: &ImportOutcome| format!("license:{}", o.license_ids[0]);
    let audit = (actor, "license.add");
    let (outcome, warnings) = import_one(service, batch, now, audit, (row, target)).await?;
    let id = outcome.license_ids.first().copied().unwrap_or_default();
    saved(service.store(), id, warnings).await
}

/// The license `id` as stored, named, with `warnings`.
async fn saved(store: &dyn Store, id: i64, warnings: Vec<String>) -> Result<LicenseSaved> {
    let license = licenses(store)
        .await?
        .into_iter()
        .find(|l| l.license.id == id)
        .ok_or_else(|| ServiceError::Internal(format!("license {id} vanished after saving it")))?;
    Ok(LicenseSaved { license, warnings })
}

/// Every license there is now, by id, with its application's name, what it is assigned to by
/// name, and its label.
pub async fn licenses(store: &dyn Store) -> Result<Vec<LicenseView>> {
    let names = application_names(store).await?;
    let assignees = store.license_assignees().await?;
    Ok(store
        .licenses()
        .await?
        .into_iter()
        .map(|license| view(license, &names, &assignees))
        .collect())
}

/// Application names by id, removed applications included (every one there was since 1970).
async fn application_names(store: &dyn Store) -> Result<HashMap<i64, String>> {
    let day = DateTime::UNIX_EPOCH.date_naive();
    Ok(store
        .applications_on(day)
        .await?
        .into_iter()
        .map(|a| (a.application.id, a.application.name))
        .collect())
}

fn view(
    license: License,
    names: &HashMap<i64, String>,
    assignees: &HashMap<i64, String>,
) -> LicenseView {
    let application = names
        .get(&license.application_id)
        .cloned()
        .unwrap_or_default();
    LicenseView {
        label: license.label(&application),
        assigned_to_name: assignees.get(&license.id).cloned(),
        application,
        license,
    }
}

/// Changes the terms of license `id` as `actor`, with the checks adding one runs (seed 002's
/// tables, the target's existence, limits); returns it as stored, with the checks' warnings.
/// The change applies to every day, past positions included; the audit log keeps the patch.
pub async fn edit_license(
    service: &Service,
    actor: &str,
    id: i64,
    patch: &LicensePatch,
) -> Result<LicenseSaved> {
    let store = service.store();
    let current = licenses(store)
        .await?
        .into_iter()
        .find(|l| l.license.id == id)
        .ok_or_else(|| ServiceError::NotFound(no_license(id)))?;
    let row = patched(&current, patch);
    let mut known = store.import_known().await?;
    // The license's own currency is not one of its application's other licenses'.
    let others: Vec<String> = store
        .licenses()
        .await?
        .into_iter()
        .filter(|l| l.application_id == current.license.application_id && l.id != id)
        .filter_map(|l| l.currency.filter(|c| !c.trim().is_empty()))
        .collect();
    known
        .license_currencies
        .insert(current.application.clone(), others);
    let batch = Batch {
        licenses: vec![(request(), row.clone())],
        ..Default::default()
    };
    checked(&known, &batch)?;
    let warnings = warnings(&known, &batch);
    let audit = entry(actor, "license.edit", format!("license:{id}"), patch);
    (store.update_license(id, &row, Some(&audit)).await).or_missing(|| no_license(id))?;
    saved(store, id, warnings).await
}

/// The license's terms as an import row, with `patch` applied. A new assignment type without
/// a target assigns it to nothing; an empty text clears the field.
fn patched(current: &LicenseView, patch: &LicensePatch) -> LicenseRow {
    let l = &current.license;
    let text = |new: &Option<String>, old: &Option<String>| match new {
        Some(t) if t.trim().is_empty() => None,
        Some(t) => Some(t.clone()),
        None => old.clone(),
    };
    let assigned_to = match (&patch.assigned_to, patch.assignment_type) {
        (Some(to), _) => Some(to.clone()).filter(|t| !t.trim().is_empty()),
        (None, Some(kind)) if kind != l.assignment_type => None,
        (None, _) => current.assigned_to_name.clone(),
    };
    let cost = l.unit_cost_minor.map(tally_core::import::format_cost);
    LicenseRow {
        application: current.application.clone(),
        metric: patch.metric.unwrap_or(l.metric),
        quantity: patch.quantity.unwrap_or(l.quantity),
        assignment_type: patch.assignment_type.unwrap_or(l.assignment_type),
        assigned_to,
        purchase_date: patch.purchase_date.or(l.purchase_date),
        valid_from: patch.valid_from.or(l.valid_from),
        valid_until: patch.valid_until.or(l.valid_until),
        maintenance_until: patch.maintenance_until.or(l.maintenance_until),
        unit_cost: text(&patch.unit_cost, &cost),
        currency: text(&patch.currency, &l.currency),
        vendor: text(&patch.vendor, &l.vendor),
        order_reference: text(&patch.order_reference, &l.order_reference),
        notes: text(&patch.notes, &l.notes),
    }
}

/// The validity and maintenance of licenses there are now that end from `from` to `days` days
/// later (both included), soonest first.
pub async fn expiring(store: &dyn Store, from: NaiveDate, days: i64) -> Result<Vec<Expiring>> {
    if !(0..=MAX_EXPIRING_DAYS).contains(&days) {
        return Err(ServiceError::Invalid(format!(
            "days: give 0 to {MAX_EXPIRING_DAYS}, not {days}"
        )));
    }
    let until = from + chrono::Duration::days(days);
    let mut ending: Vec<Expiring> = licenses(store)
        .await?
        .into_iter()
        .flat_map(|view| {
            tally_core::licenses::endings(&view.license, from, until)
                .into_iter()
                .map(move |(ends, ends_on)| Expiring {
                    license_id: view.license.id,
                    label: view.label.clone(),
                    application: view.application.clone(),
                    ends,
                    ends_on,
                    days_left: (ends_on - from).num_days(),
                })
        })
        .collect();
    ending.sort_by_key(|e| (e.ends_on, e.license_id, e.ends));
    Ok(ending)
}

/// The longest look ahead for licenses ending: ten years.
pub const MAX_EXPIRING_DAYS: i64 = 3660;

/// Removes an application, as `actor`: current lists leave it out, positions on earlier days
/// keep it, and its recognition rules, sessions and snapshots stay. Refused while it has
/// licenses, so none is left without its application.
pub async fn delete_application(
    store: &dyn Store,
    actor: &str,
    id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    let licensed: Vec<String> = licenses(store)
        .await?
        .into_iter()
        .filter(|l| l.license.application_id == id)
        .map(|l| l.label)
        .collect();
    if !licensed.is_empty() {
        return Err(ServiceError::Invalid(format!(
            "application {id} still has licenses: {}; remove them first (tally licenses remove ID)",
            licensed.join("; ")
        )));
    }
    let audit = entry(actor, "application.delete", format!("application:{id}"), ());
    (store.delete_application(id, now, Some(&audit)).await)
        .or_missing(|| format!("no application {id}; see tally apps"))
}

/// Removes a license, as `actor`: it no longer counts from `now` on, and positions on earlier
/// days still count it.
pub async fn delete_license(
    store: &dyn Store,
    actor: &str,
    id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    let audit = entry(actor, "license.delete", format!("license:{id}"), ());
    (store.delete_license(id, now, Some(&audit)).await).or_missing(|| no_license(id))
}
