//! Wire types of the agent API. Each version is its own module so a server can keep serving
//! agents that have not been upgraded yet; fields are only ever added, with serde defaults.

pub mod v1 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};
    use utoipa::ToSchema;

    use crate::file::FileInfo;
    use crate::limits::{
        check_name, check_opt_name, check_range, check_text, check_time, MAX_DROPPED_PER_REPORT,
        MAX_ID, MAX_MEMORY_BYTES, MAX_NAME, MAX_PROCESSORS, MAX_TEXT, MAX_VERSION,
    };
    use crate::rules::MeteringRule;
    use crate::usage::check_period;
    use crate::ValidationError;

    /// Sent once by a new agent with a site enrolment token.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    pub struct EnrollRequest {
        #[schema(max_length = 255)]
        pub enrollment_token: String,
        #[schema(min_length = 1, max_length = 255)]
        pub host_name: String,
        #[serde(default)]
        #[schema(max_length = 255)]
        pub fqdn: Option<String>,
        #[serde(default)]
        #[schema(max_length = 4096)]
        pub os: Option<String>,
        #[serde(default)]
        #[schema(max_length = 255)]
        pub serial: Option<String>,
        /// `/etc/machine-id`: with `serial`, how a re-enrolling machine finds its device
        /// (`tally_core::device::same_machine`).
        #[serde(default)]
        #[schema(max_length = 255)]
        pub machine_id: Option<String>,
    }

    impl EnrollRequest {
        /// A request that says nothing of the machine but its name, as the benchmark's and the
        /// tests' simulated agents send.
        pub fn named(enrollment_token: &str, host_name: String) -> Self {
            EnrollRequest {
                enrollment_token: enrollment_token.to_string(),
                host_name,
                fqdn: None,
                os: None,
                serial: None,
                machine_id: None,
            }
        }

        /// Lengths and characters of what the agent says about its machine.
        pub fn validate(&self) -> Result<(), ValidationError> {
            check_name("enrollment_token", &self.enrollment_token, MAX_NAME)?;
            if self.host_name.trim().is_empty() {
                return Err(ValidationError::new("host_name", "must not be empty"));
            }
            check_name("host_name", &self.host_name, MAX_NAME)?;
            check_opt_name("fqdn", self.fqdn.as_deref(), MAX_NAME)?;
            if let Some(os) = &self.os {
                check_text("os", os, MAX_TEXT)?;
            }
            check_opt_name("serial", self.serial.as_deref(), MAX_NAME)?;
            check_opt_name("machine_id", self.machine_id.as_deref(), MAX_NAME)
        }
    }

    /// The agent's credentials. The server keeps only a hash of `agent_secret`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    pub struct EnrollResponse {
        pub agent_id: String,
        pub agent_secret: String,
        pub device_id: i64,
        pub site_code: String,
    }

    impl EnrollResponse {
        /// The bearer credential the agent API reads: `agent_id.agent_secret`.
        pub fn bearer(&self) -> String {
            format!("{}.{}", self.agent_id, self.agent_secret)
        }
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
        #[schema(min_length = 1, max_length = 255)]
        pub account: String,
        #[serde(default)]
        #[schema(max_length = 255)]
        pub full_name: Option<String>,
    }

    /// One usage record as the agent sends it: `SMS_MeterData` with the file and user inline,
    /// since the agent does not know the server's ids.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct UsageRecordV1 {
        #[schema(min_length = 1, max_length = 128)]
        pub meter_data_id: String,
        pub file: FileInfo,
        pub user: UserRef,
        /// From 2000-01-01T00:00:00Z to the server's clock plus one day
        /// (`tally_core::limits::plausible_times`).
        pub start_time: DateTime<Utc>,
        #[schema(minimum = -840, maximum = 840)]
        pub start_time_offset: i32,
        /// Within the same window as `start_time`.
        pub end_time: DateTime<Utc>,
        #[schema(minimum = -840, maximum = 840)]
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
        /// One whole run of `file` by `user` as an agent reports it: started and ended in this
        /// report, at UTC, both ends seen (what generated load and tests send).
        pub fn whole_run(
            meter_data_id: impl Into<String>,
            file: FileInfo,
            user: UserRef,
            start_time: DateTime<Utc>,
            end_time: DateTime<Utc>,
        ) -> Self {
            Self {
                meter_data_id: meter_data_id.into(),
                file,
                user,
                start_time,
                start_time_offset: 0,
                end_time,
                end_time_offset: 0,
                started: true,
                still_running: false,
                start_not_captured: false,
                end_not_captured: false,
                in_ts_session: false,
            }
        }

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

        /// Checks every field, and that both times lie in the plausible window at `now` (the
        /// server's clock; the agent's own when it sorts out its spool).
        pub fn validate(&self, now: DateTime<Utc>) -> Result<(), ValidationError> {
            if self.meter_data_id.is_empty() || self.meter_data_id.len() > MAX_ID {
                return Err(ValidationError::new(
                    "meter_data_id",
                    "must be 1 to 128 characters",
                ));
            }
            check_name("meter_data_id", &self.meter_data_id, MAX_ID)?;
            if self.file.file_name.is_empty() {
                return Err(ValidationError::new("file.file_name", "must not be empty"));
            }
            self.file.validate()?;
            if self.user.account.is_empty() {
                return Err(ValidationError::new("user.account", "must not be empty"));
            }
            check_name("user.account", &self.user.account, MAX_NAME)?;
            check_opt_name("user.full_name", self.user.full_name.as_deref(), MAX_NAME)?;
            check_time("start_time", self.start_time, now)?;
            check_time("end_time", self.end_time, now)?;
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
        #[schema(min_length = 1, max_length = 128)]
        pub batch_id: String,
        /// The device the agent believes it is. Optional, since credentials already say it;
        /// when sent it must be the agent's own, or the batch is refused.
        #[serde(default)]
        pub device_id: Option<i64>,
        #[schema(max_items = 10000)]
        pub records: Vec<UsageRecordV1>,
        /// Records the agent had to drop because its spool was full, since its last report:
        /// at most `tally_core::limits::MAX_DROPPED_PER_REPORT` per upload.
        #[serde(default)]
        #[schema(minimum = 0, maximum = 10000000)]
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
        /// Checks the batch and every record in it, times against `now` (the server's clock).
        pub fn validate(&self, now: DateTime<Utc>) -> Result<(), BatchError> {
            let whole = |error| BatchError { index: 0, error };
            if self.batch_id.is_empty() || self.batch_id.len() > MAX_ID {
                return Err(whole(ValidationError::new(
                    "batch_id",
                    "must be 1 to 128 characters",
                )));
            }
            check_name("batch_id", &self.batch_id, MAX_ID).map_err(whole)?;
            check_range("dropped", self.dropped, 0..=MAX_DROPPED_PER_REPORT).map_err(whole)?;
            if self.records.len() > MAX_BATCH_RECORDS {
                return Err(whole(ValidationError::new(
                    "records",
                    format!("at most {MAX_BATCH_RECORDS} records per batch; split the upload"),
                )));
            }
            for (index, record) in self.records.iter().enumerate() {
                record
                    .validate(now)
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
        #[schema(min_length = 1, max_length = 255)]
        pub name: String,
        #[serde(default)]
        #[schema(max_length = 128)]
        pub version: String,
        #[serde(default)]
        #[schema(max_length = 255)]
        pub publisher: String,
        /// Bare file names, each at most 255 characters.
        #[serde(default)]
        pub executables: Vec<String>,
    }

    /// Hardware as the agent read it.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Hardware {
        #[serde(default)]
        #[schema(max_length = 255)]
        pub cpu_model: Option<String>,
        #[serde(default)]
        #[schema(minimum = 0, maximum = 1048576)]
        pub sockets: Option<i32>,
        #[serde(default)]
        #[schema(minimum = 0, maximum = 1048576)]
        pub cores: Option<i32>,
        #[serde(default)]
        #[schema(minimum = 0, maximum = 1048576)]
        pub threads: Option<i32>,
        #[serde(default)]
        #[schema(minimum = 0, maximum = 1152921504606846976_i64)]
        pub memory_bytes: Option<i64>,
        #[serde(default)]
        pub is_virtual: bool,
        #[serde(default)]
        #[schema(max_length = 255)]
        pub serial: Option<String>,
        /// `/etc/machine-id`, kept on the device so a later enrolment finds it.
        #[serde(default)]
        #[schema(max_length = 255)]
        pub machine_id: Option<String>,
    }

    impl Hardware {
        /// Names bounded and printable; counts never negative.
        pub fn validate(&self) -> Result<(), ValidationError> {
            check_opt_name("hardware.cpu_model", self.cpu_model.as_deref(), MAX_NAME)?;
            check_opt_name("hardware.serial", self.serial.as_deref(), MAX_NAME)?;
            check_opt_name("hardware.machine_id", self.machine_id.as_deref(), MAX_NAME)?;
            for (field, value) in [
                ("hardware.sockets", self.sockets),
                ("hardware.cores", self.cores),
                ("hardware.threads", self.threads),
            ] {
                if let Some(v) = value {
                    check_range(field, v, 0..=MAX_PROCESSORS)?;
                }
            }
            if let Some(m) = self.memory_bytes {
                check_range("hardware.memory_bytes", m, 0..=MAX_MEMORY_BYTES)?;
            }
            Ok(())
        }
    }

    /// A device's full inventory; it replaces the previous one.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Inventory {
        /// The agent's hash of the content, so an unchanged inventory costs nothing to store.
        #[schema(min_length = 1, max_length = 128)]
        pub hash: String,
        #[serde(default)]
        #[schema(max_length = 4096)]
        pub os: Option<String>,
        #[serde(default)]
        pub hardware: Hardware,
        #[serde(default)]
        #[schema(max_items = 50000)]
        pub software: Vec<InstalledSoftware>,
        #[serde(default)]
        #[schema(max_items = 100000)]
        pub accounts: Vec<LocalAccount>,
    }

    /// A local account on the device. Seed 003: service accounts are "not relevant for
    /// licensing"; the agent classifies them and says why.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct LocalAccount {
        #[schema(min_length = 1, max_length = 255)]
        pub name: String,
        pub uid: u32,
        #[serde(default)]
        #[schema(max_length = 255)]
        pub full_name: Option<String>,
        #[serde(default)]
        #[schema(max_length = 4096)]
        pub shell: String,
        pub service_account: bool,
        /// Why it counts as a service account, e.g. "uid 0 (system account)", "no login shell
        /// (/usr/sbin/nologin)", "user cannot change password" or "no person's name".
        #[serde(default)]
        #[schema(max_length = 255)]
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
            if let Some(os) = &self.os {
                check_text("os", os, MAX_TEXT)?;
            }
            self.hardware.validate()?;
            for a in &self.accounts {
                a.validate()?;
            }
            for (i, s) in self.software.iter().enumerate() {
                if s.name.is_empty() {
                    return Err(ValidationError::new(
                        "software",
                        format!("package {i} has no name"),
                    ));
                }
                s.validate()?;
            }
            Ok(())
        }

        /// Leaves out what the server would refuse: a package or an account whose names
        /// break the limits, hardware figures out of range, an OS description too long. One
        /// odd package must not keep a machine's whole inventory out. Returns how many
        /// entries were left out, for the agent to log.
        pub fn drop_invalid(&mut self) -> usize {
            let before = self.software.len() + self.accounts.len();
            self.software
                .retain(|s| !s.name.is_empty() && s.validate().is_ok());
            self.accounts
                .retain(|a| !a.name.is_empty() && a.validate().is_ok());
            let mut dropped = before - self.software.len() - self.accounts.len();
            if self.hardware.validate().is_err() {
                self.hardware = Hardware {
                    is_virtual: self.hardware.is_virtual,
                    ..Hardware::default()
                };
                dropped += 1;
            }
            if self
                .os
                .as_deref()
                .is_some_and(|os| check_text("os", os, MAX_TEXT).is_err())
            {
                self.os = None;
                dropped += 1;
            }
            dropped
        }
    }

    impl InstalledSoftware {
        /// Names bounded and printable; executables bare file names.
        pub fn validate(&self) -> Result<(), ValidationError> {
            if self
                .executables
                .iter()
                .any(|e| e.is_empty() || e.contains('/'))
            {
                return Err(ValidationError::new(
                    "software",
                    format!("package {:?}: executables are bare file names", self.name),
                ));
            }
            check_name("software.name", &self.name, MAX_NAME)?;
            check_name("software.version", &self.version, MAX_VERSION)?;
            check_name("software.publisher", &self.publisher, MAX_NAME)?;
            for e in &self.executables {
                check_name("software.executables", e, MAX_NAME)?;
            }
            Ok(())
        }
    }

    impl LocalAccount {
        /// Names bounded and printable.
        pub fn validate(&self) -> Result<(), ValidationError> {
            check_name("accounts.name", &self.name, MAX_NAME)?;
            check_opt_name("accounts.full_name", self.full_name.as_deref(), MAX_NAME)?;
            check_name("accounts.shell", &self.shell, MAX_TEXT)?;
            check_opt_name("accounts.reason", self.reason.as_deref(), MAX_NAME)
        }
    }

    /// Sent at a fixed interval so the server knows the agent is alive.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
    pub struct Heartbeat {
        #[schema(max_length = 128)]
        pub agent_version: String,
        pub sent_at: DateTime<Utc>,
        /// Records waiting in the agent's spool to be sent (older agents leave it out): the
        /// server sums the last one of each agent as the estate's spool backlog.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(maximum = 100_000_000)]
        pub spooled_records: Option<u64>,
    }

    /// Most records an agent's spool can hold (its `spool_max_records` bound's range).
    pub const MAX_SPOOLED_RECORDS: u64 = 100_000_000;

    impl Heartbeat {
        pub fn validate(&self) -> Result<(), ValidationError> {
            check_name("agent_version", &self.agent_version, MAX_VERSION)?;
            if self
                .spooled_records
                .is_some_and(|n| n > MAX_SPOOLED_RECORDS)
            {
                return Err(ValidationError::new(
                    "spooled_records",
                    format!("at most {MAX_SPOOLED_RECORDS}"),
                ));
            }
            Ok(())
        }
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

    #[test]
    fn an_inventory_leaves_out_only_the_entries_past_the_limits() {
        use super::v1::{Hardware, InstalledSoftware, Inventory, LocalAccount};
        let package = |name: &str| InstalledSoftware {
            name: name.into(),
            version: "1".into(),
            publisher: String::new(),
            executables: vec![name.into()],
        };
        let account = |name: &str| LocalAccount {
            name: name.into(),
            uid: 1000,
            full_name: None,
            shell: "/bin/bash".into(),
            service_account: false,
            reason: None,
        };
        let mut inventory = Inventory {
            hash: "h".into(),
            os: Some("Debian".into()),
            hardware: Hardware {
                cores: Some(-5),
                is_virtual: true,
                ..Hardware::default()
            },
            software: vec![
                package("vim"),
                package(&"x".repeat(300)),
                package("a\u{1b}b"),
            ],
            accounts: vec![account("ann"), account("bad\0")],
        };
        assert!(inventory.validate().is_err());
        assert_eq!(inventory.drop_invalid(), 4);
        assert!(inventory.validate().is_ok());
        assert_eq!(inventory.software, [package("vim")]);
        assert_eq!(inventory.accounts, [account("ann")]);
        assert_eq!(inventory.hardware.cores, None);
        assert!(inventory.hardware.is_virtual);
    }
}
