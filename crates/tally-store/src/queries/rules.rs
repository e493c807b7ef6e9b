//! Metering rules.
//! Compiled once per backend (see the crate's documentation): `Db` and `DbStore` are that
//! backend's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::rules::RuleSpec;
use tally_core::to_micros;

use super::{Db, DbStore};
use crate::rows::RuleColumns;
use crate::Result;

/// A query on one rule, as its columns come back.
pub(super) type RuleQuery<'q> =
    sqlx::query::QueryAs<'q, Db, RuleColumns, <Db as sqlx::Database>::Arguments<'q>>;

/// `sql` with the spec's fields bound as `$1` to `$9` and the time of the change as `$10`.
pub(super) fn with_spec<'q>(sql: &'q str, spec: &'q RuleSpec, at: DateTime<Utc>) -> RuleQuery<'q> {
    sqlx::query_as(sql)
        .bind(&spec.name)
        .bind(&spec.file_name)
        .bind(&spec.original_file_name)
        .bind(&spec.file_version)
        .bind(spec.language)
        .bind(&spec.product_name)
        .bind(&spec.comment)
        .bind(spec.apply_to_child_sites)
        .bind(spec.enabled)
        .bind(to_micros(at))
}

#[async_trait]
impl crate::RuleStore for DbStore {
    async fn create_rule(
        &self,
        site: &tally_core::SiteCode,
        origin: tally_core::RuleOrigin,
        spec: &RuleSpec,
        at: DateTime<Utc>,
        audit: crate::AuditOf<'_, tally_core::MeteringRule>,
    ) -> Result<tally_core::MeteringRule> {
        let sql = "INSERT INTO metering_rules (name, file_name, original_file_name, file_version,
                 language, product_name, comment, apply_to_child_sites, enabled, updated_at,
                 site_code, origin)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *";
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let rule = with_spec(sql, spec, at)
            .bind(site.as_str())
            .bind(origin.as_str())
            .fetch_one(&mut *tx)
            .await?
            .into_rule()?;
        super::audit::commit_of(tx, audit, &rule).await?;
        Ok(rule)
    }

    async fn update_rule(
        &self,
        id: i64,
        spec: &RuleSpec,
        at: DateTime<Utc>,
        audit: crate::AuditOf<'_, tally_core::MeteringRule>,
    ) -> Result<Option<tally_core::MeteringRule>> {
        let sql = "UPDATE metering_rules SET name = $1, file_name = $2, original_file_name = $3,
                 file_version = $4, language = $5, product_name = $6, comment = $7,
                 apply_to_child_sites = $8, enabled = $9, updated_at = $10
             WHERE id = $11 RETURNING *";
        let mut tx = self.pool.begin_with(super::BEGIN_WRITE).await?;
        let row = with_spec(sql, spec, at)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(rule) = row.map(|r| r.into_rule()).transpose()? else {
            return Ok(None);
        };
        super::audit::commit_of(tx, audit, &rule).await?;
        Ok(Some(rule))
    }

    async fn delete_rule(&self, id: i64, audit: crate::AuditNote<'_>) -> Result<bool> {
        super::delete_by_id(self, "metering_rules", id, audit).await
    }

    async fn rule(&self, id: i64) -> Result<Option<tally_core::MeteringRule>> {
        sqlx::query_as::<_, crate::rows::RuleColumns>("SELECT * FROM metering_rules WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.into_rule())
            .transpose()
    }

    async fn rules(&self) -> Result<Vec<tally_core::MeteringRule>> {
        let sql = "SELECT * FROM metering_rules ORDER BY id";
        super::all_rows(self, sql, crate::rows::RuleColumns::into_rule).await?
    }
}
