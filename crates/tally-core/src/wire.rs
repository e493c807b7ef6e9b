//! Wire types of the agent API. Each version is its own module so a server can keep serving
//! agents that have not been upgraded yet; fields are only ever added, with serde defaults.

pub mod v1 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};
    use utoipa::ToSchema;

    use crate::file::FileInfo;
    use crate::rules::MeteringRule;
    use crate::usage::check_period;
    use crate::ValidationError;

    /// Sent once by a new agent with a site enrolment token.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    pub struct EnrollRequest {
        pub enrollment_token: String,
        pub host_name: String,
        #[serde(default)]
        pub fqdn: Option<String>,
        #[serde(default)]
        pub os: Option<String>,
        #[serde(default)]
        pub serial: Option<String>,
    }

    /// The agent's credentials. The server keeps only a hash of `agent_secret`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    pub struct EnrollResponse {
        pub agent_id: String,
        pub agent_secret: String,
        pub device_id: i64,
        pub site_code: String,
    }

    /// What an agent must meter and how often it reports.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    pub struct Policy {
        pub site_code: String,
        /// Enabled rules of this site and those inherited from parents with
        /// `apply_to_child_sites`.
        pub rules: Vec<MeteringRule>,
        /// Length of one reporting cycle: a running program gets one record per cycle.
        pub report_interval_secs: u64,
        pub inventory_interval_secs: u64,
        pub heartbeat_interval_secs: u64,
    }

    /// The account a program ran under, as the endpoint names it.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
    pub struct UserRef {
        pub account: String,
        #[serde(default)]
        pub full_name: Option<String>,
    }

    /// One usage record as the agent sends it: `SMS_MeterData` with the file and user inline,
    /// since the agent does not know the server's ids.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct UsageRecordV1 {
        pub meter_data_id: String,
        pub file: FileInfo,
        pub user: UserRef,
        pub start_time: DateTime<Utc>,
        pub start_time_offset: i32,
        pub end_time: DateTime<Utc>,
        pub end_time_offset: i32,
        pub started: bool,
        pub still_running: bool,
        pub start_not_captured: bool,
        pub end_not_captured: bool,
        pub in_ts_session: bool,
    }

    /// Largest number of records in one upload.
    pub const MAX_BATCH_RECORDS: usize = 10_000;
    /// UTC offsets beyond ±14 h do not exist.
    const MAX_OFFSET_MINUTES: i32 = 14 * 60;

    impl UsageRecordV1 {
        /// The record to store, once its device, file and user are known by id: the one place
        /// the wire record becomes the stored one.
        pub fn to_record(
            &self,
            device_id: i64,
            file_id: i64,
            user_id: i64,
        ) -> crate::usage::NewUsageRecord {
            crate::usage::NewUsageRecord {
                meter_data_id: self.meter_data_id.clone(),
                device_id,
                file_id,
                user_id,
                start_time: self.start_time,
                start_time_offset: self.start_time_offset,
                end_time: self.end_time,
                end_time_offset: self.end_time_offset,
                started: self.started,
                still_running: self.still_running,
                start_not_captured: self.start_not_captured,
                end_not_captured: self.end_not_captured,
                in_ts_session: self.in_ts_session,
            }
        }

        pub fn validate(&self) -> Result<(), ValidationError> {
            if self.meter_data_id.is_empty() || self.meter_data_id.len() > 128 {
                return Err(ValidationError::new(
                    "meter_data_id",
                    "must be 1 to 128 characters",
                ));
            }
            if self.file.file_name.is_empty() {
                return Err(ValidationError::new("file.file_name", "must not be empty"));
            }
            if self.user.account.is_empty() {
                return Err(ValidationError::new("user.account", "must not be empty"));
            }
            for (field, offset) in [
                ("start_time_offset", self.start_time_offset),
                ("end_time_offset", self.end_time_offset),
            ] {
                if offset.abs() > MAX_OFFSET_MINUTES {
                    return Err(ValidationError::new(
                        field,
                        format!("{offset} minutes is not a UTC offset (allowed: -840 to 840)"),
                    ));
                }
            }
            check_period(
                self.start_time,
                self.end_time,
                self.started,
                self.start_not_captured,
            )
        }
    }

    /// A batch of usage records. `batch_id` is the idempotency key: a retried batch is
    /// acknowledged again and stored once.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct UsageBatch {
        pub batch_id: String,
        /// The device the agent believes it is. Optional, since credentials already say it;
        /// when sent it must be the agent's own, or the batch is refused.
        #[serde(default)]
        pub device_id: Option<i64>,
        pub records: Vec<UsageRecordV1>,
        /// Records the agent had to drop because its spool was full, since its last report.
        #[serde(default)]
        pub dropped: u64,
    }

    /// Why a batch was refused: which record, which field.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("record {index}: {error}")]
    pub struct BatchError {
        pub index: usize,
        pub error: ValidationError,
    }

    impl UsageBatch {
        pub fn validate(&self) -> Result<(), BatchError> {
            let whole = |error| BatchError { index: 0, error };
            if self.batch_id.is_empty() || self.batch_id.len() > 128 {
                return Err(whole(ValidationError::new(
                    "batch_id",
                    "must be 1 to 128 characters",
                )));
            }
            if self.records.len() > MAX_BATCH_RECORDS {
                return Err(whole(ValidationError::new(
                    "records",
                    format!("at most {MAX_BATCH_RECORDS} records per batch; split the upload"),
                )));
            }
            for (index, record) in self.records.iter().enumerate() {
                record
                    .validate()
                    .map_err(|error| BatchError { index, error })?;
            }
            Ok(())
        }
    }

    /// The server's answer to an upload.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    pub struct UsageAck {
        pub batch_id: String,
        /// Records newly stored by this request.
        pub stored: u64,
        /// Records already stored before (a retry), acknowledged without storing again.
        pub duplicates: u64,
    }

    /// One installed package and the executables it ships (file names, no paths).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct InstalledSoftware {
        pub name: String,
        #[serde(default)]
        pub version: String,
        #[serde(default)]
        pub publisher: String,
        #[serde(default)]
        pub executables: Vec<String>,
    }

    /// Hardware as the agent read it.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Hardware {
        #[serde(default)]
        pub cpu_model: Option<String>,
        #[serde(default)]
        pub sockets: Option<i32>,
        #[serde(default)]
        pub cores: Option<i32>,
        #[serde(default)]
        pub threads: Option<i32>,
        #[serde(default)]
        pub memory_bytes: Option<i64>,
        #[serde(default)]
        pub is_virtual: bool,
        #[serde(default)]
        pub serial: Option<String>,
    }

    /// A device's full inventory; it replaces the previous one.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Inventory {
        /// The agent's hash of the content, so an unchanged inventory costs nothing to store.
        pub hash: String,
        #[serde(default)]
        pub os: Option<String>,
        #[serde(default)]
        pub hardware: Hardware,
        #[serde(default)]
        pub software: Vec<InstalledSoftware>,
        #[serde(default)]
        pub accounts: Vec<LocalAccount>,
    }

    /// A local account on the device. Seed 003: service accounts are "not relevant for
    /// licensing"; the agent classifies them and says why.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct LocalAccount {
        pub name: String,
        pub uid: u32,
        #[serde(default)]
        pub full_name: Option<String>,
        #[serde(default)]
        pub shell: String,
        pub service_account: bool,
        /// Why it counts as a service account: "no login shell", "system uid" or "no
        /// person's name".
        #[serde(default)]
        pub reason: Option<String>,
    }

    /// Most local accounts one inventory may list.
    pub const MAX_INVENTORY_ACCOUNTS: usize = 100_000;

    /// Most packages one inventory may list.
    pub const MAX_INVENTORY_PACKAGES: usize = 50_000;

    impl Inventory {
        pub fn validate(&self) -> Result<(), ValidationError> {
            if self.hash.is_empty() || self.hash.len() > 128 {
                return Err(ValidationError::new("hash", "must be 1 to 128 characters"));
            }
            if self.software.len() > MAX_INVENTORY_PACKAGES {
                return Err(ValidationError::new(
                    "software",
                    format!("at most {MAX_INVENTORY_PACKAGES} packages"),
                ));
            }
            if self.accounts.len() > MAX_INVENTORY_ACCOUNTS {
                return Err(ValidationError::new(
                    "accounts",
                    format!("at most {MAX_INVENTORY_ACCOUNTS} accounts"),
                ));
            }
            if let Some(i) = self.accounts.iter().position(|a| a.name.is_empty()) {
                return Err(ValidationError::new(
                    "accounts",
                    format!("account {i} has no name"),
                ));
            }
            for (i, s) in self.software.iter().enumerate() {
                if s.name.is_empty() {
                    return Err(ValidationError::new(
                        "software",
                        format!("package {i} has no name"),
                    ));
                }
                if s.executables
                    .iter()
                    .any(|e| e.is_empty() || e.contains('/'))
                {
                    return Err(ValidationError::new(
                        "software",
                        format!("package {:?}: executables are bare file names", s.name),
                    ));
                }
            }
            Ok(())
        }
    }

    /// Sent at a fixed interval so the server knows the agent is alive.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    pub struct Heartbeat {
        pub agent_version: String,
        pub sent_at: DateTime<Utc>,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::v1::{UsageRecordV1, UserRef};
    use crate::file::FileInfo;

    #[test]
    fn a_wire_record_keeps_every_field_when_stored() {
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap();
        let wire = UsageRecordV1 {
            meter_data_id: "run-1".into(),
            file: FileInfo {
                file_name: "vim".into(),
                original_file_name: "vim".into(),
                version: "9".into(),
                product_name: "Vim".into(),
                publisher: "Bram".into(),
                language: 0,
            },
            user: UserRef {
                account: "ann".into(),
                full_name: None,
            },
            start_time: start,
            start_time_offset: -300,
            end_time: end,
            end_time_offset: 60,
            started: true,
            still_running: false,
            start_not_captured: false,
            end_not_captured: true,
            in_ts_session: true,
        };
        let stored = wire.to_record(7, 8, 9);
        assert_eq!(
            (stored.device_id, stored.file_id, stored.user_id),
            (7, 8, 9)
        );
        assert_eq!(stored.meter_data_id, "run-1");
        assert_eq!((stored.start_time, stored.end_time), (start, end));
        assert_eq!(
            (stored.start_time_offset, stored.end_time_offset),
            (-300, 60)
        );
        assert_eq!(
            (
                stored.started,
                stored.still_running,
                stored.start_not_captured,
                stored.end_not_captured,
                stored.in_ts_session
            ),
            (true, false, false, true, true)
        );
    }
}
