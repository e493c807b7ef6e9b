//! License certificates, the site's own key and alias, and the system-metering report over
//! the API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A file as the CLI read it: its name (for `FILE:LINE:` in refusals) and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextFile {
    #[schema(max_length = 4096)]
    pub file: String,
    /// At most 16 KiB.
    #[schema(max_length = 16384)]
    pub text: String,
}

/// Certificate files to verify and store: all of them, or (on any refusal) none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportCertificates {
    /// At most 100 files.
    pub files: Vec<TextFile>,
}

/// A stored certificate with the seed's columns and the license it backs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CertificateView {
    /// Customer, product, count, created, expires (empty: unlimited), key, metric, issuer.
    #[serde(flatten)]
    pub certificate: tally_core::certificates::Certificate,
    /// Expired today.
    pub expired: bool,
    /// The license it registered or updated, e.g. `#3 Office, 10 installations`.
    pub license: Option<String>,
    pub imported_at: DateTime<Utc>,
    pub imported_by: String,
}

/// This site as reports name it, and its public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SiteView {
    pub code: String,
    pub name: String,
    /// The alias that heads every report, when one is set.
    pub alias: Option<String>,
    /// Where the alias comes from: `serveralias.txt`, `tally site set`, `configuration`, or
    /// none.
    pub alias_source: Option<String>,
    /// The site's Ed25519 public key (hex): whoever receives a signed DAT verifies it with
    /// this (`tally certificates verify-report FILE --key KEY`).
    pub public_key: Option<String>,
}

/// The alias to set; empty removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAlias {
    #[schema(max_length = 255)]
    pub alias: String,
}

/// A system-metering run: where its files are and what became of the upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MeteringRun {
    /// The folder of the three files.
    pub folder: String,
    pub files: Vec<String>,
    /// Devices in relevant statuses, natural persons, operators with write access.
    pub devices: i64,
    pub users: i64,
    pub operators: i64,
    /// Uploads sent on this run (this one and any left from earlier runs).
    pub uploaded: Vec<String>,
    /// Uploads still waiting in the outbox, with the last error.
    pub pending: Vec<String>,
    pub upload_error: Option<String>,
    /// Custom compare values the result updated, by application name.
    pub compare_values: Vec<CompareValue>,
}

/// An application's custom compare value as the metering result set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompareValue {
    pub application: String,
    pub quantity: i64,
}

type Result<T> = std::result::Result<T, crate::ClientError>;

impl crate::Client {
    /// Every stored certificate.
    pub async fn certificates(&self) -> Result<Vec<CertificateView>> {
        self.get("/api/v1/certificates").await
    }

    /// Verifies and stores certificate files, all or none.
    pub async fn import_certificates(&self, files: Vec<TextFile>) -> Result<Vec<CertificateView>> {
        self.post("/api/v1/certificates", &ImportCertificates { files })
            .await
    }

    /// Trusts an issuer's public key file.
    pub async fn trust_issuer(&self, file: TextFile) -> Result<tally_core::certificates::Issuer> {
        self.post("/api/v1/certificates/issuers", &file).await
    }

    /// The trusted issuers.
    pub async fn issuers(&self) -> Result<Vec<tally_core::certificates::Issuer>> {
        self.get("/api/v1/certificates/issuers").await
    }
}

impl crate::Client {
    /// This site: alias (with its source) and public key.
    pub async fn site(&self) -> Result<SiteView> {
        self.get("/api/v1/site").await
    }

    /// Sets the stored alias; empty removes it.
    pub async fn set_alias(&self, alias: &str) -> Result<SiteView> {
        let body = SetAlias {
            alias: alias.to_string(),
        };
        self.call(reqwest::Method::PUT, "/api/v1/site/alias", Some(&body))
            .await
    }

    /// Each device status's relevance criteria.
    pub async fn relevance(&self) -> Result<Vec<tally_core::system_metering::StatusRelevance>> {
        self.get("/api/v1/site/relevance").await
    }

    /// Sets one status's criteria.
    pub async fn set_relevance(
        &self,
        r: &tally_core::system_metering::StatusRelevance,
    ) -> Result<Vec<tally_core::system_metering::StatusRelevance>> {
        self.call(reqwest::Method::PUT, "/api/v1/site/relevance", Some(r))
            .await
    }

    /// Runs the system-metering report now.
    pub async fn system_metering(&self) -> Result<MeteringRun> {
        self.call(
            reqwest::Method::POST,
            "/api/v1/system-metering",
            crate::client::NO_BODY,
        )
        .await
    }
}
