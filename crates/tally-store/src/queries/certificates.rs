//! License certificates and their issuers.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tally_core::certificates::{
    Certificate, Issuer, Measure, SignedCertificate, StoredCertificate,
};
use tally_core::to_micros;

use super::{Db, DbStore};
use crate::certificates::{CertificateImport, LicenseTerms};
use crate::{AuditNote, AuditOf, Result, StoreError};

const COLUMNS: &str = "id, cert_key, customer, product, count, created, expires, metric, issuer, \
     signature, license_id, imported_at, imported_by";

/// A row in the order of [`COLUMNS`].
type CertRow = (
    i64,
    String,
    String,
    String,
    i64,
    NaiveDate,
    Option<NaiveDate>,
    String,
    String,
    String,
    Option<i64>,
    DateTime<Utc>,
    String,
);

fn stored_of(r: CertRow) -> StoredCertificate {
    StoredCertificate {
        id: r.0,
        signed: SignedCertificate {
            certificate: Certificate {
                key: r.1,
                customer: r.2,
                product: r.3,
                count: r.4,
                created: r.5,
                expires: r.6,
                metric: r.7,
                issuer: r.8,
            },
            signature: r.9,
        },
        license_id: r.10,
        imported_at: r.11,
        imported_by: r.12,
    }
}

async fn update_license(
    tx: &mut sqlx::Transaction<'_, Db>,
    terms: &LicenseTerms<'_>,
) -> Result<i64> {
    let done = sqlx::query(
        "UPDATE licenses SET quantity = $1, valid_from = $2, valid_until = $3, vendor = $4,
             order_reference = $5 WHERE id = $6 AND removed_at IS NULL",
    )
    .bind(terms.quantity)
    .bind(terms.valid_from)
    .bind(terms.valid_until)
    .bind(terms.vendor)
    .bind(terms.order_reference)
    .bind(terms.id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!(
            "no license {} to update",
            terms.id
        )));
    }
    Ok(terms.id)
}

/// Adds the fingerprint's recognition rule to `application` unless it has it already, and
/// records the application's metering measure.
async fn recognise(
    tx: &mut sqlx::Transaction<'_, Db>,
    application: i64,
    pattern: &str,
    measure: Option<Measure>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO recognition_rules (application_id, software, publisher, version,
             metering_rule)
         SELECT $1, $2, '', '', '' WHERE NOT EXISTS (SELECT 1 FROM recognition_rules
             WHERE application_id = $1 AND software = $2)",
    )
    .bind(application)
    .bind(pattern)
    .execute(&mut **tx)
    .await?;
    if let Some(m) = measure {
        sqlx::query(
            "INSERT INTO metering_measures (application_id, measure) VALUES ($1, $2)
             ON CONFLICT (application_id) DO UPDATE SET measure = excluded.measure",
        )
        .bind(application)
        .bind(m.as_str())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[async_trait]
impl crate::CertificateStore for DbStore {
    async fn issuers(&self) -> Result<Vec<Issuer>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, public_key FROM certificate_issuers ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(name, public_key)| Issuer { name, public_key })
            .collect())
    }

    async fn trust_issuer(
        &self,
        issuer: &Issuer,
        at: DateTime<Utc>,
        by: &str,
        audit: AuditNote<'_>,
    ) -> Result<()> {
        let query = sqlx::query(
            "INSERT INTO certificate_issuers (name, public_key, trusted_at, trusted_by)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&issuer.name)
        .bind(&issuer.public_key)
        .bind(to_micros(at))
        .bind(by);
        super::change_one(self, query, audit).await.map(|_| ())
    }

    async fn certificates(&self) -> Result<Vec<StoredCertificate>> {
        let sql = format!("SELECT {COLUMNS} FROM certificates ORDER BY cert_key");
        let rows = sqlx::query_as::<_, CertRow>(&sql)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(stored_of).collect())
    }

    async fn import_certificate(
        &self,
        import: &CertificateImport<'_>,
        site: &tally_core::SiteCode,
        audit: AuditOf<'_, StoredCertificate>,
    ) -> Result<StoredCertificate> {
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let c = &import.signed.certificate;
        let outcome = super::import::import_tx(
            &mut tx,
            import.batch,
            (site, import.at),
            &|_| {},
            Default::default(),
        )
        .await?;
        let license_id = match &import.update_license {
            Some(terms) => update_license(&mut tx, terms).await?,
            None => *outcome.license_ids.first().ok_or_else(|| {
                StoreError::NotFound("the certificate's license was not added".into())
            })?,
        };
        let application: i64 =
            sqlx::query_scalar("SELECT application_id FROM licenses WHERE id = $1")
                .bind(license_id)
                .fetch_one(&mut *tx)
                .await?;
        recognise(&mut tx, application, import.recognition, import.measure).await?;
        let sql = format!(
            "INSERT INTO certificates (cert_key, customer, product, count, created, expires,
                 metric, issuer, signature, license_id, imported_at, imported_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {COLUMNS}"
        );
        let row = sqlx::query_as::<_, CertRow>(&sql)
            .bind(&c.key)
            .bind(&c.customer)
            .bind(&c.product)
            .bind(c.count)
            .bind(c.created)
            .bind(c.expires)
            .bind(&c.metric)
            .bind(&c.issuer)
            .bind(&import.signed.signature)
            .bind(license_id)
            .bind(to_micros(import.at))
            .bind(import.by)
            .fetch_one(&mut *tx)
            .await?;
        let stored = stored_of(row);
        super::audit::commit_of(tx, audit, &stored).await?;
        Ok(stored)
    }

    async fn metering_measures(&self) -> Result<Vec<(i64, Measure)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT m.application_id, m.measure FROM metering_measures m
             JOIN applications a ON a.id = m.application_id WHERE a.removed_at IS NULL
             ORDER BY m.application_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, m)| {
                let measure = Measure::parse(&m).ok_or(StoreError::Corrupt {
                    column: "metering_measures.measure",
                    value: m,
                })?;
                Ok((id, measure))
            })
            .collect()
    }
}
