//! Enrolment tokens and enrolled agents.
//!
//! Like osquery's enrolment, a site-scoped shared token is traded once for per-agent
//! credentials; the token can be limited in time and uses and revoked without touching agents
//! already enrolled.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::site::SiteCode;

/// How long an enrolment token made without an expiry accepts enrolments: a week, so that a
/// token pasted into a ticket or a deployment script does not stay a way in for ever. A longer
/// roll-out asks for its own time (`expires_at`, `tally enrollment create --expires`).
pub const ENROLLMENT_TOKEN_DEFAULT_DAYS: i64 = 7;

/// A token agents enrol with; only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentToken {
    pub id: i64,
    /// The site enrolled agents belong to.
    pub site_code: SiteCode,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// No enrolment is accepted at or after this time.
    pub expires_at: Option<DateTime<Utc>>,
    /// No more enrolments than this; unlimited when absent.
    pub max_uses: Option<i32>,
    pub uses: i32,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An enrolled agent. Its secret is stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    pub id: String,
    pub device_id: i64,
    pub enrolled_at: DateTime<Utc>,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub agent_version: Option<String>,
    /// Records the agent reported dropping because its spool was full: never silent.
    pub dropped_records: i64,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An enrolment token to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnrollmentToken {
    pub site_code: SiteCode,
    pub name: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_uses: Option<i32>,
}

/// An agent being enrolled: its credentials and what it says about its machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    pub agent_id: String,
    pub secret_hash: String,
    pub host_name: String,
    pub fqdn: Option<String>,
    pub os: Option<String>,
    pub serial: Option<String>,
    /// `/etc/machine-id`: with `serial`, finds the device of a machine enrolling again
    /// ([`crate::device::same_machine`]).
    pub machine_id: Option<String>,
}
