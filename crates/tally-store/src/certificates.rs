//! License certificates: trusted issuers, and certificates with the licenses they back.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::certificates::{Issuer, Measure, SignedCertificate, StoredCertificate};
use tally_core::import::Batch;

use crate::{AuditNote, AuditOf, Result};

/// One verified certificate to store, in one transaction with what it registers.
pub struct CertificateImport<'a> {
    pub signed: &'a SignedCertificate,
    /// The application (when new) and the license (when no license is to be updated) to
    /// import, as the import stores them.
    pub batch: &'a Batch,
    /// A license to update to the certificate's terms instead of adding one:
    /// `(id, quantity, valid_from, valid_until, vendor, order_reference)`.
    pub update_license: Option<LicenseTerms<'a>>,
    /// The recognition pattern its fingerprint is recognised by.
    pub recognition: &'a str,
    /// The metering figure that keeps the application's compare value.
    pub measure: Option<Measure>,
    pub at: DateTime<Utc>,
    pub by: &'a str,
}

/// A license's terms as a certificate sets them.
pub struct LicenseTerms<'a> {
    pub id: i64,
    pub quantity: i64,
    pub valid_from: chrono::NaiveDate,
    pub valid_until: Option<chrono::NaiveDate>,
    pub vendor: &'a str,
    pub order_reference: &'a str,
}

#[async_trait]
pub trait CertificateStore: Send + Sync {
    /// Every trusted issuer, by name.
    async fn issuers(&self) -> Result<Vec<Issuer>>;

    /// Trusts an issuer's key, with its audit entry; [`crate::StoreError::Conflict`] when the
    /// name or the key is trusted already.
    async fn trust_issuer(
        &self,
        issuer: &Issuer,
        at: DateTime<Utc>,
        by: &str,
        audit: AuditNote<'_>,
    ) -> Result<()>;

    /// Every stored certificate, by key.
    async fn certificates(&self) -> Result<Vec<StoredCertificate>>;

    /// Stores a verified certificate with the application and license it registers (or the
    /// license it updates), the fingerprint's recognition rule and the application's metering
    /// measure, and its audit entry, all in one transaction; [`crate::StoreError::Conflict`]
    /// when a certificate with its key is stored already.
    async fn import_certificate(
        &self,
        import: &CertificateImport<'_>,
        site: &tally_core::SiteCode,
        audit: AuditOf<'_, StoredCertificate>,
    ) -> Result<StoredCertificate>;

    /// The applications whose compare value a metering measure keeps.
    async fn metering_measures(&self) -> Result<Vec<(i64, Measure)>>;
}
