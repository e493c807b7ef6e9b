//! The query code both backends share. sqlx's query API is generic over the database, but
//! writing it generically needs a wall of trait bounds per function; a macro instantiated once
//! per backend keeps one copy of each query readable instead.

/// Rows per multi-row INSERT: 13 parameters each stays under SQLite's 32,766-parameter limit.
pub(crate) const INSERT_CHUNK: usize = 1000;

/// Creates a device; shared by direct creation and enrolment.
pub(crate) const INSERT_DEVICE: &str =
    "INSERT INTO devices (site_code, host_name, fqdn, os, serial, created_at, last_seen)
     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING *";

macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:literal) => {
        impl $store {
            /// Makes `software` the device's installed software at `at`, keeping history for
            /// compliance on past days: a package still listed keeps its row (and the day it
            /// was first seen), a new one gets a row from `at`, and one no longer listed is
            /// marked removed at `at`.
            async fn replace_installed(
                tx: &mut sqlx::Transaction<'_, $db>,
                device_id: i64,
                software: &[tally_core::wire::v1::InstalledSoftware],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                // Stored as every other time is, to the microsecond, so they compare as text too.
                let at = tally_core::to_micros(at);
                let current: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM installed_software WHERE device_id = $1 AND removed_at IS NULL",
                )
                .bind(device_id)
                .fetch_all(&mut **tx)
                .await?;
                let listed: std::collections::HashSet<&str> =
                    software.iter().map(|s| s.name.as_str()).collect();
                let gone: Vec<&String> =
                    current.iter().filter(|n| !listed.contains(n.as_str())).collect();
                for chunk in gone.chunks($crate::shared::INSERT_CHUNK) {
                    let mut update = sqlx::QueryBuilder::<$db>::new("UPDATE installed_software SET removed_at = ");
                    update.push_bind(at).push(" WHERE removed_at IS NULL AND device_id = ");
                    update.push_bind(device_id).push(" AND name IN (");
                    let mut names = update.separated(", ");
                    for name in chunk {
                        names.push_bind(name.as_str());
                    }
                    update.push(")");
                    update.build().execute(&mut **tx).await?;
                }
                // One statement may not update a row twice: the first entry of a name wins.
                let mut once = std::collections::HashSet::new();
                let software: Vec<_> = software.iter().filter(|s| once.insert(&s.name)).collect();
                for chunk in software.chunks($crate::shared::INSERT_CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO installed_software (device_id, name, version, publisher,
                             installed_at) ",
                    );
                    insert.push_values(chunk, |mut row, s| {
                        row.push_bind(device_id)
                            .push_bind(&s.name)
                            .push_bind(&s.version)
                            .push_bind(&s.publisher)
                            .push_bind(at);
                    });
                    insert.push(
                        " ON CONFLICT (device_id, name) WHERE removed_at IS NULL
                         DO UPDATE SET version = excluded.version, publisher = excluded.publisher",
                    );
                    insert.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Inserts records under one new `TimeSerial` inside the caller's transaction.
            async fn insert_records(
                tx: &mut sqlx::Transaction<'_, $db>,
                records: &[$crate::NewUsageRecord],
            ) -> $crate::Result<$crate::InsertOutcome> {
                // Taken first and held to commit: serials then follow commit order.
                let time_serial: i64 = sqlx::query_scalar(
                    "UPDATE counters SET value = value + 1 WHERE name = 'time_serial' RETURNING value",
                )
                .fetch_one(&mut **tx)
                .await?;
                // The longest period stored bounds the search for records overlapping a time.
                let longest = records
                    .iter()
                    .map(|r| (r.end_time - r.start_time).num_milliseconds())
                    .max()
                    .unwrap_or(0);
                sqlx::query(
                    "UPDATE counters SET value = $1 WHERE name = 'longest_period_ms' AND value < $1",
                )
                .bind(longest)
                .execute(&mut **tx)
                .await?;
                let mut stored = 0;
                for chunk in records.chunks($crate::shared::INSERT_CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO usage_records (device_id, meter_data_id, file_id, user_id,
                             start_time, start_time_offset, end_time, end_time_offset, started,
                             still_running, start_not_captured, end_not_captured, in_ts_session,
                             time_serial) ",
                    );
                    insert.push_values(chunk, |mut row, r| {
                        row.push_bind(r.device_id)
                            .push_bind(&r.meter_data_id)
                            .push_bind(r.file_id)
                            .push_bind(r.user_id)
                            .push_bind(tally_core::to_micros(r.start_time))
                            .push_bind(r.start_time_offset)
                            .push_bind(tally_core::to_micros(r.end_time))
                            .push_bind(r.end_time_offset)
                            .push_bind(r.started)
                            .push_bind(r.still_running)
                            .push_bind(r.start_not_captured)
                            .push_bind(r.end_not_captured)
                            .push_bind(r.in_ts_session)
                            .push_bind(time_serial);
                    });
                    insert.push(" ON CONFLICT DO NOTHING");
                    stored += insert.build().execute(&mut **tx).await?.rows_affected();
                }
                Ok($crate::InsertOutcome {
                    stored,
                    duplicates: records.len() as u64 - stored,
                    time_serial,
                })
            }
        }

        #[async_trait::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn schema_version(&self) -> $crate::Result<$crate::SchemaVersion> {
                let mut conn = self.pool.acquire().await?;
                let database = $crate::schema::current(&mut *conn).await?;
                Ok($crate::SchemaVersion {
                    database,
                    binary: $crate::schema::newest(&Self::MIGRATOR),
                })
            }

            async fn put_site(&self, site: &tally_core::Site) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO sites (code, name, alias, parent) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (code) DO UPDATE SET name = excluded.name,
                         alias = excluded.alias, parent = excluded.parent",
                )
                .bind(site.code.as_str())
                .bind(&site.name)
                .bind(&site.alias)
                .bind(site.parent.as_ref().map(|p| p.as_str()))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn site(&self, code: &tally_core::SiteCode) -> $crate::Result<Option<tally_core::Site>> {
                sqlx::query_as::<_, $crate::rows::SiteRow>("SELECT * FROM sites WHERE code = $1")
                    .bind(code.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| r.into_site())
                    .transpose()
            }

            async fn sites(&self) -> $crate::Result<Vec<tally_core::Site>> {
                sqlx::query_as::<_, $crate::rows::SiteRow>("SELECT * FROM sites ORDER BY code")
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|r| r.into_site())
                    .collect()
            }

            async fn create_device(
                &self,
                device: &tally_core::device::NewDevice,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<tally_core::Device> {
                sqlx::query_as::<_, $crate::rows::DeviceRow>(
                    $crate::shared::INSERT_DEVICE,
                )
                .bind(device.site_code.as_str())
                .bind(&device.host_name)
                .bind(&device.fqdn)
                .bind(&device.os)
                .bind(&device.serial)
                .bind(tally_core::to_micros(at))
                .fetch_one(&self.pool)
                .await?
                .into_device()
            }

            async fn device(&self, id: i64) -> $crate::Result<Option<tally_core::Device>> {
                sqlx::query_as::<_, $crate::rows::DeviceRow>("SELECT * FROM devices WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| r.into_device())
                    .transpose()
            }

            async fn devices(&self, page: $crate::Page) -> $crate::Result<Vec<tally_core::Device>> {
                sqlx::query_as::<_, $crate::rows::DeviceRow>(
                    "SELECT * FROM devices WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(page.after)
                .bind(page.limit)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| r.into_device())
                .collect()
            }

            async fn touch_device(&self, id: i64, at: chrono::DateTime<chrono::Utc>) -> $crate::Result<()> {
                sqlx::query("UPDATE devices SET last_seen = $1 WHERE id = $2")
                    .bind(tally_core::to_micros(at))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn upsert_user(&self, account: &str, full_name: Option<&str>) -> $crate::Result<i64> {
                // DO UPDATE (not DO NOTHING) so RETURNING yields the id of an existing row too.
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO users (account, full_name) VALUES ($1, $2)
                     ON CONFLICT (account) DO UPDATE
                         SET full_name = COALESCE(excluded.full_name, users.full_name)
                     RETURNING id",
                )
                .bind(account)
                .bind(full_name)
                .fetch_one(&self.pool)
                .await?;
                Ok(id)
            }

            async fn users(&self, page: $crate::Page) -> $crate::Result<Vec<tally_core::User>> {
                sqlx::query_as::<_, $crate::rows::UserRow>(
                    "SELECT * FROM users WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(page.after)
                .bind(page.limit)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| r.into_user())
                .collect()
            }

            async fn upsert_file(&self, file: &tally_core::FileInfo) -> $crate::Result<i64> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO files (file_name, original_file_name, version, product_name, publisher, language)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (file_name, original_file_name, version, product_name, publisher, language)
                     DO UPDATE SET file_name = excluded.file_name
                     RETURNING id",
                )
                .bind(&file.file_name)
                .bind(&file.original_file_name)
                .bind(&file.version)
                .bind(&file.product_name)
                .bind(&file.publisher)
                .bind(file.language)
                .fetch_one(&self.pool)
                .await?;
                Ok(id)
            }

            async fn files(&self, page: $crate::Page) -> $crate::Result<Vec<tally_core::file::StoredFile>> {
                Ok(sqlx::query_as::<_, $crate::rows::FileRow>(
                    "SELECT * FROM files WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(page.after)
                .bind(page.limit)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| r.into_file())
                .collect())
            }

            async fn create_rule(
                &self,
                site: &tally_core::SiteCode,
                origin: tally_core::RuleOrigin,
                spec: &tally_core::rules::RuleSpec,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<tally_core::MeteringRule> {
                sqlx::query_as::<_, $crate::rows::RuleRow>(
                    "INSERT INTO metering_rules (site_code, name, file_name, original_file_name,
                         file_version, language, product_name, comment, apply_to_child_sites,
                         enabled, origin, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *",
                )
                .bind(site.as_str())
                .bind(&spec.name)
                .bind(&spec.file_name)
                .bind(&spec.original_file_name)
                .bind(&spec.file_version)
                .bind(spec.language)
                .bind(&spec.product_name)
                .bind(&spec.comment)
                .bind(spec.apply_to_child_sites)
                .bind(spec.enabled)
                .bind(origin.as_str())
                .bind(tally_core::to_micros(at))
                .fetch_one(&self.pool)
                .await?
                .into_rule()
            }

            async fn update_rule(
                &self,
                id: i64,
                spec: &tally_core::rules::RuleSpec,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Option<tally_core::MeteringRule>> {
                sqlx::query_as::<_, $crate::rows::RuleRow>(
                    "UPDATE metering_rules SET name = $1, file_name = $2, original_file_name = $3,
                         file_version = $4, language = $5, product_name = $6, comment = $7,
                         apply_to_child_sites = $8, enabled = $9, updated_at = $10
                     WHERE id = $11 RETURNING *",
                )
                .bind(&spec.name)
                .bind(&spec.file_name)
                .bind(&spec.original_file_name)
                .bind(&spec.file_version)
                .bind(spec.language)
                .bind(&spec.product_name)
                .bind(&spec.comment)
                .bind(spec.apply_to_child_sites)
                .bind(spec.enabled)
                .bind(tally_core::to_micros(at))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.into_rule())
                .transpose()
            }

            async fn delete_rule(&self, id: i64) -> $crate::Result<bool> {
                let done = sqlx::query("DELETE FROM metering_rules WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn rule(&self, id: i64) -> $crate::Result<Option<tally_core::MeteringRule>> {
                sqlx::query_as::<_, $crate::rows::RuleRow>("SELECT * FROM metering_rules WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| r.into_rule())
                    .transpose()
            }

            async fn rules(&self) -> $crate::Result<Vec<tally_core::MeteringRule>> {
                sqlx::query_as::<_, $crate::rows::RuleRow>("SELECT * FROM metering_rules ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|r| r.into_rule())
                    .collect()
            }

            async fn insert_usage(
                &self,
                records: &[$crate::NewUsageRecord],
            ) -> $crate::Result<$crate::InsertOutcome> {
                let mut tx = self.pool.begin().await?;
                let outcome = Self::insert_records(&mut tx, records).await?;
                tx.commit().await?;
                Ok(outcome)
            }

            async fn insert_usage_batch(
                &self,
                device_id: i64,
                batch_id: &str,
                records: &[$crate::NewUsageRecord],
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::BatchOutcome> {
                let mut tx = self.pool.begin().await?;
                let outcome = Self::insert_records(&mut tx, records).await?;
                let claimed = sqlx::query(
                    "INSERT INTO usage_batches (device_id, batch_id, stored, duplicates, received_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(device_id)
                .bind(batch_id)
                .bind(outcome.stored as i64)
                .bind(outcome.duplicates as i64)
                .bind(tally_core::to_micros(at))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 1 {
                    tx.commit().await?;
                    return Ok($crate::BatchOutcome {
                        stored: outcome.stored,
                        duplicates: outcome.duplicates,
                        replayed: false,
                    });
                }
                // A replay: undo anything this request wrote and answer as the first time.
                tx.rollback().await?;
                let (stored, duplicates): (i64, i64) = sqlx::query_as(
                    "SELECT stored, duplicates FROM usage_batches WHERE device_id = $1 AND batch_id = $2",
                )
                .bind(device_id)
                .bind(batch_id)
                .fetch_one(&self.pool)
                .await?;
                Ok($crate::BatchOutcome {
                    stored: stored as u64,
                    duplicates: duplicates as u64,
                    replayed: true,
                })
            }

            async fn usage_records(
                &self,
                query: &$crate::UsageQuery,
            ) -> $crate::Result<Vec<tally_core::UsageRecord>> {
                let mut sql = sqlx::QueryBuilder::<$db>::new("SELECT * FROM usage_records WHERE id > ");
                sql.push_bind(query.page.after);
                if let Some(device) = query.device_id {
                    sql.push(" AND device_id = ").push_bind(device);
                }
                if let Some(since) = query.since {
                    sql.push(" AND end_time >= ").push_bind(tally_core::to_micros(since));
                }
                if let Some(files) = &query.file_ids {
                    if files.is_empty() {
                        return Ok(Vec::new());
                    }
                    sql.push(" AND file_id IN (");
                    let mut list = sql.separated(", ");
                    for f in files {
                        list.push_bind(*f);
                    }
                    list.push_unseparated(")");
                }
                sql.push(" ORDER BY id LIMIT ").push_bind(query.page.limit);
                Ok(sql
                    .build_query_as::<$crate::rows::UsageRow>()
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|r| r.into_record())
                    .collect())
            }

            async fn create_operator_token(
                &self,
                name: &str,
                role: tally_core::Role,
                token_hash: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<tally_core::OperatorToken> {
                sqlx::query_as::<_, $crate::rows::TokenRow>(
                    "INSERT INTO operator_tokens (name, role, token_hash, created_at)
                     VALUES ($1, $2, $3, $4)
                     RETURNING id, name, role, created_at, revoked_at",
                )
                .bind(name)
                .bind(role.as_str())
                .bind(token_hash)
                .bind(tally_core::to_micros(at))
                .fetch_one(&self.pool)
                .await?
                .into_token()
            }

            async fn operator_tokens(&self) -> $crate::Result<Vec<tally_core::OperatorToken>> {
                sqlx::query_as::<_, $crate::rows::TokenRow>(
                    "SELECT id, name, role, created_at, revoked_at FROM operator_tokens ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| r.into_token())
                .collect()
            }

            async fn operator_token_by_hash(
                &self,
                token_hash: &str,
            ) -> $crate::Result<Option<tally_core::OperatorToken>> {
                sqlx::query_as::<_, $crate::rows::TokenRow>(
                    "SELECT id, name, role, created_at, revoked_at FROM operator_tokens
                     WHERE token_hash = $1 AND revoked_at IS NULL",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.into_token())
                .transpose()
            }

            async fn revoke_operator_token(
                &self,
                id: i64,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let done = sqlx::query(
                    "UPDATE operator_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(tally_core::to_micros(at))
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn create_enrollment_token(
                &self,
                token: &$crate::NewEnrollmentToken,
                token_hash: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<tally_core::agents::EnrollmentToken> {
                sqlx::query_as::<_, $crate::rows::EnrollmentTokenRow>(
                    "INSERT INTO enrollment_tokens (site_code, name, token_hash, created_at, expires_at, max_uses)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
                )
                .bind(token.site_code.as_str())
                .bind(&token.name)
                .bind(token_hash)
                .bind(tally_core::to_micros(at))
                .bind(token.expires_at.map(tally_core::to_micros))
                .bind(token.max_uses)
                .fetch_one(&self.pool)
                .await?
                .into_token()
            }

            async fn enrollment_tokens(&self) -> $crate::Result<Vec<tally_core::agents::EnrollmentToken>> {
                sqlx::query_as::<_, $crate::rows::EnrollmentTokenRow>(
                    "SELECT * FROM enrollment_tokens ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| r.into_token())
                .collect()
            }

            async fn revoke_enrollment_token(
                &self,
                id: i64,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let done = sqlx::query(
                    "UPDATE enrollment_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(tally_core::to_micros(at))
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn enroll_agent(
                &self,
                token_hash: &str,
                agent: &$crate::NewAgent,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Option<(tally_core::agents::Agent, tally_core::Device)>> {
                let at = tally_core::to_micros(at);
                let mut tx = self.pool.begin().await?;
                // The conditional update both checks the token and takes a use, atomically.
                let site: Option<String> = sqlx::query_scalar(
                    "UPDATE enrollment_tokens SET uses = uses + 1
                     WHERE token_hash = $1 AND revoked_at IS NULL
                       AND (expires_at IS NULL OR expires_at > $2)
                       AND (max_uses IS NULL OR uses < max_uses)
                     RETURNING site_code",
                )
                .bind(token_hash)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(site) = site else { return Ok(None) };
                let device = sqlx::query_as::<_, $crate::rows::DeviceRow>(
                    $crate::shared::INSERT_DEVICE,
                )
                .bind(&site)
                .bind(&agent.host_name)
                .bind(&agent.fqdn)
                .bind(&agent.os)
                .bind(&agent.serial)
                .bind(at)
                .fetch_one(&mut *tx)
                .await?
                .into_device()?;
                let (stored, _) = sqlx::query_as::<_, $crate::rows::AgentRow>(
                    "INSERT INTO agents (id, device_id, secret_hash, enrolled_at)
                     VALUES ($1, $2, $3, $4) RETURNING *",
                )
                .bind(&agent.agent_id)
                .bind(device.id)
                .bind(&agent.secret_hash)
                .bind(at)
                .fetch_one(&mut *tx)
                .await?
                .into_agent();
                tx.commit().await?;
                Ok(Some((stored, device)))
            }

            async fn agent(&self, id: &str) -> $crate::Result<Option<(tally_core::agents::Agent, String)>> {
                Ok(sqlx::query_as::<_, $crate::rows::AgentRow>("SELECT * FROM agents WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| r.into_agent()))
            }

            async fn agents(&self) -> $crate::Result<Vec<tally_core::agents::Agent>> {
                Ok(sqlx::query_as::<_, $crate::rows::AgentRow>("SELECT * FROM agents ORDER BY enrolled_at, id")
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|r| r.into_agent().0)
                    .collect())
            }

            async fn revoke_agent(&self, id: &str, at: chrono::DateTime<chrono::Utc>) -> $crate::Result<bool> {
                let done = sqlx::query(
                    "UPDATE agents SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(tally_core::to_micros(at))
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn agent_heartbeat(
                &self,
                id: &str,
                version: &str,
                dropped: i64,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<()> {
                let at = tally_core::to_micros(at);
                let mut tx = self.pool.begin().await?;
                let device: Option<i64> = sqlx::query_scalar(
                    "UPDATE agents SET last_heartbeat = $1, agent_version = $2,
                         dropped_records = dropped_records + $3
                     WHERE id = $4 RETURNING device_id",
                )
                .bind(at)
                .bind(version)
                .bind(dropped)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(device) = device {
                    sqlx::query("UPDATE devices SET last_seen = $1 WHERE id = $2")
                        .bind(at)
                        .bind(device)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn put_inventory(
                &self,
                device_id: i64,
                inventory: &tally_core::wire::v1::Inventory,
                at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<bool> {
                let at = tally_core::to_micros(at);
                let mut tx = self.pool.begin().await?;
                let stored: Option<Option<String>> =
                    sqlx::query_scalar("SELECT inventory_hash FROM devices WHERE id = $1")
                        .bind(device_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let unchanged = stored.flatten().as_deref() == Some(inventory.hash.as_str());
                let hw = &inventory.hardware;
                let update = if unchanged {
                    sqlx::query("UPDATE devices SET last_seen = $1 WHERE id = $2")
                        .bind(at)
                        .bind(device_id)
                } else {
                    sqlx::query(
                        "UPDATE devices SET last_seen = $1, inventory_hash = $2,
                             os = COALESCE($3, os), cpu_model = $4, sockets = $5, cores = $6,
                             threads = $7, is_virtual = $8, serial = COALESCE($9, serial),
                             memory_bytes = $11
                         WHERE id = $10",
                    )
                    .bind(at)
                    .bind(&inventory.hash)
                    .bind(&inventory.os)
                    .bind(&hw.cpu_model)
                    .bind(hw.sockets)
                    .bind(hw.cores)
                    .bind(hw.threads)
                    .bind(hw.is_virtual)
                    .bind(&hw.serial)
                    .bind(device_id)
                    .bind(hw.memory_bytes)
                };
                update.execute(&mut *tx).await?;
                if unchanged {
                    tx.commit().await?;
                    return Ok(false);
                }
                for table in ["software_executables", "local_accounts"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE device_id = $1"))
                        .bind(device_id)
                        .execute(&mut *tx)
                        .await?;
                }
                Self::replace_installed(&mut tx, device_id, &inventory.software, at).await?;
                let executables: Vec<(&str, &str)> = inventory
                    .software
                    .iter()
                    .flat_map(|s| s.executables.iter().map(move |e| (e.as_str(), s.name.as_str())))
                    .collect();
                for chunk in executables.chunks($crate::shared::INSERT_CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO software_executables (device_id, file_name, package) ",
                    );
                    insert.push_values(chunk, |mut row, (file, package)| {
                        row.push_bind(device_id).push_bind(*file).push_bind(*package);
                    });
                    insert.push(" ON CONFLICT DO NOTHING");
                    insert.build().execute(&mut *tx).await?;
                }
                for chunk in inventory.accounts.chunks($crate::shared::INSERT_CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO local_accounts (device_id, name, uid, full_name, shell, service_account, reason) ",
                    );
                    insert.push_values(chunk, |mut row, a| {
                        row.push_bind(device_id)
                            .push_bind(&a.name)
                            .push_bind(i64::from(a.uid))
                            .push_bind(&a.full_name)
                            .push_bind(&a.shell)
                            .push_bind(a.service_account)
                            .push_bind(&a.reason);
                    });
                    insert.push(" ON CONFLICT DO NOTHING");
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn max_time_serial(&self) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar("SELECT value FROM counters WHERE name = 'time_serial'")
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn usage_by_serial(
                &self,
                (after_serial, upto_serial): (i64, i64),
                (page_serial, page_id): (i64, i64),
                limit: i64,
            ) -> $crate::Result<Vec<tally_core::UsageRecord>> {
                // One lower bound, so the planner starts the index range at the page, not at
                // the watermark (which would make reading every record quadratic).
                let lowest = page_serial.max(after_serial + 1);
                Ok(sqlx::query_as::<_, $crate::rows::UsageRow>(
                    "SELECT * FROM usage_records
                     WHERE time_serial >= $1 AND time_serial <= $2 AND (time_serial, id) > ($3, $4)
                     ORDER BY time_serial, id LIMIT $5",
                )
                .bind(lowest)
                .bind(upto_serial)
                .bind(page_serial)
                .bind(page_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| r.into_record())
                .collect())
            }

            async fn usage_overlapping(
                &self,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Vec<tally_core::UsageRecord>> {
                let longest: i64 = sqlx::query_scalar(
                    "SELECT value FROM counters WHERE name = 'longest_period_ms'",
                )
                .fetch_one(&self.pool)
                .await?;
                // A record overlapping [from, to) ends before `to` plus the longest period: the
                // end-time index then reads only the records near the window.
                let latest_end = to + chrono::Duration::milliseconds(longest);
                Ok(sqlx::query_as::<_, $crate::rows::UsageRow>(
                    "SELECT * FROM usage_records
                     WHERE end_time >= $1 AND end_time <= $3 AND start_time < $2",
                )
                .bind(tally_core::to_micros(from))
                .bind(tally_core::to_micros(to))
                .bind(tally_core::to_micros(latest_end))
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| r.into_record())
                .collect())
            }

            async fn usage_pending(&self, watermark: i64) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM usage_records WHERE time_serial > $1")
                    .bind(watermark)
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn replace_file_usage_hours(
                &self,
                keys: &[(i64, chrono::DateTime<chrono::Utc>)],
                rows: &[tally_core::summary::FileUsageHour],
            ) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                for chunk in keys.chunks($crate::shared::INSERT_CHUNK) {
                    let mut delete = sqlx::QueryBuilder::<$db>::new(
                        "DELETE FROM file_usage_hourly WHERE (rule_id, hour) IN (",
                    );
                    let mut list = delete.separated(", ");
                    for (rule, hour) in chunk {
                        list.push("(")
                            .push_bind_unseparated(*rule)
                            .push_unseparated(", ")
                            .push_bind_unseparated(tally_core::to_micros(*hour))
                            .push_unseparated(")");
                    }
                    delete.push(")");
                    delete.build().execute(&mut *tx).await?;
                }
                for chunk in rows.chunks($crate::shared::INSERT_CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO file_usage_hourly (rule_id, hour, distinct_users, distinct_devices,
                         distinct_ts_users, usage_ms, peak_concurrent_runs, peak_concurrent_users) ",
                    );
                    insert.push_values(chunk, |mut row, h| {
                        row.push_bind(h.rule_id)
                            .push_bind(tally_core::to_micros(h.hour))
                            .push_bind(h.distinct_users)
                            .push_bind(h.distinct_devices)
                            .push_bind(h.distinct_ts_users)
                            .push_bind(h.usage_ms)
                            .push_bind(h.peak_concurrent_runs)
                            .push_bind(h.peak_concurrent_users);
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn file_usage_hours(
                &self,
                rule_id: Option<i64>,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Vec<tally_core::summary::FileUsageHour>> {
                let rows: Vec<$crate::rows::HourRow> = sqlx::query_as(
                    "SELECT * FROM file_usage_hourly
                     WHERE hour >= $1 AND hour < $2 AND ($3 IS NULL OR rule_id = $3)
                     ORDER BY hour, rule_id",
                )
                .bind(tally_core::to_micros(from))
                .bind(tally_core::to_micros(to))
                .bind(rule_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn add_monthly_usage(
                &self,
                rows: &[(tally_core::summary::MonthKey, tally_core::summary::MonthlyUsage)],
                (from, to): (i64, i64),
            ) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                let task = tally_core::tasks::Task::SummarizeMonthlyUsage;
                let defaults = task.defaults();
                sqlx::query(
                    "INSERT INTO maintenance_tasks (name, enabled, every_secs, watermark)
                     VALUES ($1, $2, $3, 0) ON CONFLICT (name) DO NOTHING",
                )
                .bind(task.name())
                .bind(defaults.enabled)
                .bind(defaults.every_secs)
                .execute(&mut *tx)
                .await?;
                let moved = sqlx::query(
                    "UPDATE maintenance_tasks SET watermark = $1 WHERE name = $2 AND watermark = $3",
                )
                .bind(to)
                .bind(task.name())
                .bind(from)
                .execute(&mut *tx)
                .await?;
                if moved.rows_affected() != 1 {
                    return Err($crate::StoreError::Conflict(
                        "the monthly summary moved on meanwhile (another server summarised); run the task again".into(),
                    ));
                }
                for chunk in rows.chunks($crate::shared::INSERT_CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO monthly_usage (rule_id, device_id, user_id, month, runs, usage_ms, last_used) ",
                    );
                    insert.push_values(chunk, |mut row, (k, u)| {
                        row.push_bind(k.rule_id)
                            .push_bind(k.device_id)
                            .push_bind(k.user_id)
                            .push_bind(k.month)
                            .push_bind(u.runs)
                            .push_bind(u.usage_ms)
                            .push_bind(tally_core::to_micros(u.last_used));
                    });
                    insert.push(
                        " ON CONFLICT (rule_id, device_id, user_id, month) DO UPDATE SET
                           runs = monthly_usage.runs + excluded.runs,
                           usage_ms = monthly_usage.usage_ms + excluded.usage_ms,
                           last_used = CASE WHEN excluded.last_used > monthly_usage.last_used
                                       THEN excluded.last_used ELSE monthly_usage.last_used END",
                    );
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn monthly_usage(
                &self,
                rule_id: Option<i64>,
                (first, last): (i32, i32),
            ) -> $crate::Result<Vec<(tally_core::summary::MonthKey, tally_core::summary::MonthlyUsage)>> {
                let rows: Vec<$crate::rows::MonthRow> = sqlx::query_as(
                    "SELECT * FROM monthly_usage
                     WHERE month >= $1 AND month <= $2 AND ($3 IS NULL OR rule_id = $3)
                     ORDER BY month, rule_id, device_id, user_id",
                )
                .bind(first)
                .bind(last)
                .bind(rule_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn delete_aged_usage(
                &self,
                before: chrono::DateTime<chrono::Utc>,
                summarised: i64,
            ) -> $crate::Result<u64> {
                let mut tx = self.pool.begin().await?;
                let before = tally_core::to_micros(before);
                sqlx::query(
                    "UPDATE usage_records SET released = TRUE
                     WHERE end_time < $1 AND time_serial <= $2 AND NOT released",
                )
                .bind(before)
                .bind(summarised)
                .execute(&mut *tx)
                .await?;
                let deleted = sqlx::query("DELETE FROM usage_records WHERE released AND end_time < $1")
                    .bind(before)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(deleted.rows_affected())
            }

            async fn delete_aged_summaries(
                &self,
                before: chrono::DateTime<chrono::Utc>,
                before_month: i32,
            ) -> $crate::Result<u64> {
                let mut tx = self.pool.begin().await?;
                let hours = sqlx::query("DELETE FROM file_usage_hourly WHERE hour < $1")
                    .bind(tally_core::to_micros(before))
                    .execute(&mut *tx)
                    .await?;
                let months = sqlx::query("DELETE FROM monthly_usage WHERE month < $1")
                    .bind(before_month)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(hours.rows_affected() + months.rows_affected())
            }

            async fn lock_task(&self, name: &str) -> $crate::Result<Option<$crate::TaskLock>> {
                self.task_lock(name).await
            }

            async fn tasks(&self) -> $crate::Result<Vec<tally_core::tasks::TaskState>> {
                let stored: Vec<$crate::rows::TaskRow> =
                    sqlx::query_as("SELECT * FROM maintenance_tasks")
                        .fetch_all(&self.pool)
                        .await?;
                Ok($crate::shared::with_defaults(stored))
            }

            async fn put_task(&self, t: &tally_core::tasks::TaskState) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO maintenance_tasks (name, enabled, every_secs, age_days, last_run_at,
                         last_duration_ms, last_rows, watermark, last_error)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled,
                         every_secs = excluded.every_secs, age_days = excluded.age_days,
                         last_run_at = excluded.last_run_at,
                         last_duration_ms = excluded.last_duration_ms,
                         last_rows = excluded.last_rows, watermark = excluded.watermark,
                         last_error = excluded.last_error",
                )
                .bind(&t.name)
                .bind(t.enabled)
                .bind(t.every_secs)
                .bind(t.age_days)
                .bind(t.last_run_at.map(tally_core::to_micros))
                .bind(t.last_duration_ms)
                .bind(t.last_rows)
                .bind(t.watermark)
                .bind(&t.last_error)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn device_inventory(
                &self,
                device_id: i64,
            ) -> $crate::Result<$crate::DeviceInventory> {
                let software: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT name, version, publisher FROM installed_software
                     WHERE device_id = $1 AND removed_at IS NULL ORDER BY name",
                )
                .bind(device_id)
                .fetch_all(&self.pool)
                .await?;
                let executables: Vec<(String, String)> = sqlx::query_as(
                    "SELECT package, file_name FROM software_executables
                     WHERE device_id = $1 ORDER BY package, file_name",
                )
                .bind(device_id)
                .fetch_all(&self.pool)
                .await?;
                let accounts: Vec<(String, i64, Option<String>, String, bool, Option<String>)> =
                    sqlx::query_as(
                        "SELECT name, uid, full_name, shell, service_account, reason
                         FROM local_accounts WHERE device_id = $1 ORDER BY name",
                    )
                    .bind(device_id)
                    .fetch_all(&self.pool)
                    .await?;
                Ok($crate::shared::device_inventory(software, executables, accounts))
            }

            async fn monthly_totals(
                &self,
                (first, last): (i32, i32),
            ) -> $crate::Result<Vec<$crate::RuleMonth>> {
                Ok(sqlx::query_as(
                    "SELECT rule_id, month, CAST(SUM(runs) AS BIGINT) AS runs,
                         COUNT(DISTINCT user_id) AS users, COUNT(DISTINCT device_id) AS devices,
                         CAST(SUM(usage_ms) AS BIGINT) AS usage_ms
                     FROM monthly_usage WHERE month >= $1 AND month <= $2
                     GROUP BY rule_id, month ORDER BY month, rule_id",
                )
                .bind(first)
                .bind(last)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn monthly_usage_by(
                &self,
                by: $crate::UsageByKind,
                rule_id: i64,
                (first, last): (i32, i32),
            ) -> $crate::Result<Vec<$crate::UsageBy>> {
                let sql = match by {
                    $crate::UsageByKind::User => "SELECT m.user_id AS id, u.account AS name,
                         u.full_name AS detail, CAST(SUM(m.runs) AS BIGINT) AS runs,
                         CAST(SUM(m.usage_ms) AS BIGINT) AS usage_ms,
                         COUNT(DISTINCT m.device_id) AS others, MAX(m.last_used) AS last_used
                     FROM monthly_usage m JOIN users u ON u.id = m.user_id
                     WHERE m.rule_id = $1 AND m.month >= $2 AND m.month <= $3
                     GROUP BY m.user_id, u.account, u.full_name ORDER BY usage_ms DESC, name",
                    $crate::UsageByKind::Device => "SELECT m.device_id AS id, d.host_name AS name,
                         d.fqdn AS detail, CAST(SUM(m.runs) AS BIGINT) AS runs,
                         CAST(SUM(m.usage_ms) AS BIGINT) AS usage_ms,
                         COUNT(DISTINCT m.user_id) AS others, MAX(m.last_used) AS last_used
                     FROM monthly_usage m JOIN devices d ON d.id = m.device_id
                     WHERE m.rule_id = $1 AND m.month >= $2 AND m.month <= $3
                     GROUP BY m.device_id, d.host_name, d.fqdn ORDER BY usage_ms DESC, name",
                };
                Ok(sqlx::query_as(sql)
                    .bind(rule_id)
                    .bind(first)
                    .bind(last)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn installations(
                &self,
                file_name: &str,
            ) -> $crate::Result<Vec<$crate::Installation>> {
                Ok(sqlx::query_as(
                    "SELECT e.device_id, d.host_name, e.package, COALESCE(s.version, '') AS version,
                         e.file_name
                     FROM software_executables e JOIN devices d ON d.id = e.device_id
                     LEFT JOIN installed_software s
                         ON s.device_id = e.device_id AND s.name = e.package
                             AND s.removed_at IS NULL
                     WHERE lower(e.file_name) = lower($1)
                     ORDER BY d.host_name, e.device_id, e.package",
                )
                .bind(file_name)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn executables_seen(&self) -> $crate::Result<Vec<tally_core::autorules::ExecutableSeen>> {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT file_name, MIN(package), COUNT(*) FROM software_executables
                     GROUP BY file_name ORDER BY file_name",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(file_name, package, devices)| tally_core::autorules::ExecutableSeen {
                        file_name,
                        package,
                        devices,
                    })
                    .collect())
            }

            async fn inventoried_devices(&self) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE inventory_hash IS NOT NULL")
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn append_audit(&self, entry: &tally_core::AuditEntry) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(tally_core::to_micros(entry.at))
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(&entry.target)
                .bind(&entry.detail)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn audit_log(
                &self,
                page: $crate::Page,
            ) -> $crate::Result<Vec<(i64, tally_core::AuditEntry)>> {
                Ok(sqlx::query_as::<_, $crate::rows::AuditRow>(
                    "SELECT * FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(page.after)
                .bind(page.limit)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| r.into_entry())
                .collect())
            }
        }
    };
}

pub(crate) use impl_store;

type AccountRow = (String, i64, Option<String>, String, bool, Option<String>);

use tally_core::wire::v1::{InstalledSoftware, LocalAccount};

/// Assembles a device's stored inventory from its three tables' rows.
pub(crate) fn device_inventory(
    software: Vec<(String, String, String)>,
    executables: Vec<(String, String)>,
    accounts: Vec<AccountRow>,
) -> crate::DeviceInventory {
    let mut by_package: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (package, file) in executables {
        by_package.entry(package).or_default().push(file);
    }
    crate::DeviceInventory {
        software: software
            .into_iter()
            .map(|(name, version, publisher)| InstalledSoftware {
                executables: by_package.remove(&name).unwrap_or_default(),
                name,
                version,
                publisher,
            })
            .collect(),
        accounts: accounts
            .into_iter()
            .map(
                |(name, uid, full_name, shell, service_account, reason)| LocalAccount {
                    name,
                    uid: u32::try_from(uid).unwrap_or_default(),
                    full_name,
                    shell,
                    service_account,
                    reason,
                },
            )
            .collect(),
    }
}

/// Stored task rows, with every task not stored yet at its defaults, in [`Task::ALL`] order.
pub(crate) fn with_defaults(
    stored: Vec<crate::rows::TaskRow>,
) -> Vec<tally_core::tasks::TaskState> {
    let mut stored: std::collections::HashMap<String, tally_core::tasks::TaskState> = stored
        .into_iter()
        .map(|r| {
            let t: tally_core::tasks::TaskState = r.into();
            (t.name.clone(), t)
        })
        .collect();
    tally_core::tasks::Task::ALL
        .iter()
        .map(|t| stored.remove(t.name()).unwrap_or_else(|| t.defaults()))
        .collect()
}
