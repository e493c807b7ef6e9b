//! License certificates (docs/certificates.md): issuers' keys trusted, certificates verified
//! and stored with the license each registers or updates, which it then backs. Every refusal
//! (a malformed file, an unknown issuer, a bad signature, a key stored already) names the file
//! and why, and stores nothing: every file of a request is checked before any is stored.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use tally_api::{CertificateView, TextFile};
use tally_core::certificates::{
    fingerprint_pattern, parse_certificate, parse_public_key, verifying_key, Issuer,
    SignedCertificate, StoredCertificate,
};
use tally_core::import::{ApplicationRow, Batch, LicenseRow, Origin};
use tally_core::{AssignmentType, License};
use tally_store::{CertificateImport, ErrorKind, LicenseTerms, Store};

use crate::audit::entry;
use crate::{Result, Service, ServiceError};

/// The most files one request may import.
pub const MAX_FILES: usize = 100;
/// The largest certificate or key file.
pub const MAX_FILE_BYTES: usize = 16 * 1024;

fn check_size(file: &TextFile) -> Result<()> {
    if file.file.len() > 4096 || file.text.len() > MAX_FILE_BYTES {
        return Err(ServiceError::Invalid(format!(
            "{}: larger than 16 KiB (or a name over 4096 bytes): not a certificate or key file",
            file.file
        )));
    }
    Ok(())
}

/// Trusts the issuer whose public key file is `file`, as `actor`.
pub async fn trust(service: &Service, actor: &str, file: &TextFile) -> Result<Issuer> {
    check_size(file)?;
    let issuer = parse_public_key(&file.file, &file.text)
        .map_err(|e| ServiceError::Invalid(e.to_string()))?;
    let audit = entry(
        actor,
        "certificate.trust",
        format!("issuer:{}", issuer.name),
        &issuer,
    );
    match service
        .store()
        .trust_issuer(&issuer, audit.at, actor, Some(&audit))
        .await
    {
        Err(e) if e.kind() == ErrorKind::Conflict => Err(ServiceError::Conflict(format!(
            "{}: issuer {:?} or its key is trusted already; see tally certificates list",
            file.file, issuer.name
        ))),
        done => Ok(done.map(|_| issuer)?),
    }
}

/// A certificate checked against the trusted issuers and what is stored: the file it came from
/// and the certificate.
struct Checked {
    file: String,
    signed: SignedCertificate,
}

/// Parses and verifies one file; the refusal names the file and why.
fn verified(file: &TextFile, issuers: &[Issuer]) -> Result<Checked> {
    check_size(file)?;
    let signed = parse_certificate(&file.file, &file.text)
        .map_err(|e| ServiceError::Invalid(format!("malformed certificate: {e}")))?;
    let name = &signed.certificate.issuer;
    let issuer = issuers.iter().find(|i| &i.name == name).ok_or_else(|| {
        ServiceError::Invalid(format!(
            "{}: issuer: unknown issuer {name:?}: no trusted key of that name; trust the \
             issuer's public key first (tally certificates trust KEY_FILE)",
            file.file
        ))
    })?;
    let key = verifying_key(&issuer.public_key).map_err(ServiceError::Internal)?;
    signed.verify(&key).map_err(|why| {
        ServiceError::Invalid(format!(
            "{}: signature: bad signature: {why} (issuer {name:?})",
            file.file
        ))
    })?;
    Ok(Checked {
        file: file.file.clone(),
        signed,
    })
}

/// The license a certificate registers: its product, count and validity, on the whole
/// organisation, marked by its order reference as backed by the certificate.
fn license_row(signed: &SignedCertificate, metric: tally_core::Metric) -> LicenseRow {
    let c = &signed.certificate;
    LicenseRow {
        valid_from: Some(c.created),
        valid_until: c.expires,
        vendor: Some(c.issuer.clone()),
        order_reference: Some(reference(&c.key)),
        notes: Some(format!(
            "backed by license certificate {} of {}",
            c.key, c.customer
        )),
        ..LicenseRow::new(&c.product, metric, c.count, AssignmentType::Organization)
    }
}

/// The order reference that marks a license as backed by certificate `key`.
pub fn reference(key: &str) -> String {
    format!("certificate {key}")
}

/// Refuses a certificate whose key is stored already or came earlier in the same request.
fn check_new(
    checked: &Checked,
    stored: &[StoredCertificate],
    seen: &HashSet<String>,
) -> Result<()> {
    let key = &checked.signed.certificate.key;
    if let Some(s) = stored.iter().find(|s| &s.certificate().key == key) {
        return Err(ServiceError::Conflict(format!(
            "{}: key: duplicate key: certificate {key} was imported on {} by {}; a certificate \
             is imported once",
            checked.file,
            s.imported_at.date_naive(),
            s.imported_by
        )));
    }
    if seen.contains(key) {
        return Err(ServiceError::Conflict(format!(
            "{}: key: duplicate key: certificate {key} is given twice in this import",
            checked.file
        )));
    }
    Ok(())
}

/// What one certificate stores: the batch (a new application and a new license) and the
/// license to update instead, when one is marked with its key already.
fn plan(
    checked: &Checked,
    known: &tally_core::import::Known,
    licenses: &[License],
) -> Result<(Batch, Option<i64>)> {
    let c = &checked.signed.certificate;
    let metric = c.metric().expect("parsed").license_metric();
    if !metric
        .allowed_assignments()
        .contains(&AssignmentType::Organization)
    {
        return Err(ServiceError::Invalid(format!(
            "{}: metric: a certificate licenses the whole organisation, and a {} license \
             cannot be; use installations, users, devices or a metered_ measure",
            checked.file,
            metric.as_str()
        )));
    }
    let origin = Origin {
        file: checked.file.as_str().into(),
        line: 1,
    };
    let mut batch = Batch::default();
    if !known.applications.contains_key(&c.product) {
        let app = ApplicationRow {
            publisher: c.issuer.clone(),
            ..ApplicationRow::new(&c.product, metric)
        };
        batch.applications.push((origin.clone(), app));
    }
    let marked = licenses
        .iter()
        .find(|l| l.order_reference.as_deref() == Some(reference(&c.key).as_str()));
    let update = marked.map(|l| l.id);
    if update.is_none() {
        batch
            .licenses
            .push((origin, license_row(&checked.signed, metric)));
    }
    crate::licensing::checked(known, &batch)
        .map_err(|e| ServiceError::Invalid(format!("{}: {e}", checked.file)))?;
    Ok((batch, update))
}

/// Verifies every file, then stores each certificate with the license it registers (or
/// updates), as `actor`; nothing is stored when any file is refused.
pub async fn import(
    service: &Service,
    actor: &str,
    files: &[TextFile],
    now: DateTime<Utc>,
) -> Result<Vec<CertificateView>> {
    if files.is_empty() || files.len() > MAX_FILES {
        return Err(ServiceError::Invalid(format!(
            "files: give 1 to {MAX_FILES} certificate files"
        )));
    }
    let store = service.store();
    let issuers = store.issuers().await?;
    let stored = store.certificates().await?;
    let known = store.import_known().await?;
    let licenses = store.licenses().await?;
    let mut seen = HashSet::new();
    let mut plans = Vec::new();
    for file in files {
        let checked = verified(file, &issuers)?;
        check_new(&checked, &stored, &seen)?;
        seen.insert(checked.signed.certificate.key.clone());
        let (batch, update) = plan(&checked, &known, &licenses)?;
        plans.push((checked, batch, update));
    }
    for (checked, batch, update) in &plans {
        store_one(service, actor, (checked, batch, *update), now).await?;
    }
    // Seed 003's SAM integration: the fingerprints on the server's own device at once.
    crate::metering::record_fingerprints(service, now).await?;
    list(store, now.date_naive()).await
}

async fn store_one(
    service: &Service,
    actor: &str,
    (checked, batch, update): (&Checked, &Batch, Option<i64>),
    now: DateTime<Utc>,
) -> Result<StoredCertificate> {
    let c = &checked.signed.certificate;
    let reference = reference(&c.key);
    let metric = c.metric().expect("parsed");
    let import = CertificateImport {
        signed: &checked.signed,
        batch,
        update_license: update.map(|id| LicenseTerms {
            id,
            quantity: c.count,
            valid_from: c.created,
            valid_until: c.expires,
            vendor: &c.issuer,
            order_reference: &reference,
        }),
        recognition: &fingerprint_pattern(&c.product),
        measure: metric.measure(),
        at: now,
        by: actor,
    };
    let audit = |s: &StoredCertificate| {
        let detail = (&s.signed.certificate, s.license_id);
        entry(
            actor,
            "certificate.import",
            format!("certificate:{}", c.key),
            detail,
        )
    };
    match store_import(service, &import, &audit).await {
        Err(ServiceError::Store(e)) if e.kind() == ErrorKind::Conflict => {
            Err(ServiceError::Conflict(format!(
                "{}: key: duplicate key: certificate {} was stored meanwhile",
                checked.file, c.key
            )))
        }
        done => done,
    }
}

async fn store_import(
    service: &Service,
    import: &CertificateImport<'_>,
    audit: &(dyn Fn(&StoredCertificate) -> tally_core::AuditEntry + Send + Sync),
) -> Result<StoredCertificate> {
    Ok(service
        .store()
        .import_certificate(import, service.site(), Some(audit))
        .await?)
}

/// Every stored certificate with the seed's columns, whether it has expired by `today`, and
/// the license it backs.
pub async fn list(store: &dyn Store, today: NaiveDate) -> Result<Vec<CertificateView>> {
    let labels = crate::licensing::licenses(store).await?;
    Ok(store
        .certificates()
        .await?
        .into_iter()
        .map(|s| {
            let license = labels
                .iter()
                .find(|l| Some(l.license.id) == s.license_id)
                .map(|l| l.label.clone());
            CertificateView {
                expired: s.expired_on(today),
                certificate: s.signed.certificate,
                license,
                imported_at: s.imported_at,
                imported_by: s.imported_by,
            }
        })
        .collect())
}
