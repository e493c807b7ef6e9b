//! The server's own views and the operator side of the API: errors, health, who a token
//! belongs to, operator and enrolment tokens, and the audit log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tally_core::{AuditEntry, Role, SiteCode};
use utoipa::ToSchema;

/// The body of every error response: a machine-readable code and a sentence for people that
/// says what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

/// Liveness and readiness in one: the server answers and its database does too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub site_code: String,
    pub database: String,
    pub schema_version: i64,
    pub version: String,
}

/// The operator a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    pub role: Role,
}

/// A newly created token: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken<T> {
    #[serde(flatten)]
    pub info: T,
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollmentToken {
    pub name: String,
    /// Defaults to this server's site.
    #[serde(default)]
    pub site_code: Option<SiteCode>,
    /// No enrolment is accepted from this time on. Defaults to 7 days after creation
    /// (`tally_core::agents::ENROLLMENT_TOKEN_DEFAULT_DAYS`).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// No more enrolments than this; unlimited when absent.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_uses: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditRow {
    pub id: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}
