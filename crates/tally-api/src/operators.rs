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

/// Liveness (`/healthz`): the server process answers. Its schema version is the one this
/// binary ships, which the database was migrated to at start; the database itself is not asked,
/// so an outage does not get a live server restarted (`/readyz` asks it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub site_code: String,
    pub database: String,
    pub schema_version: i64,
    pub version: String,
}

/// Readiness (`/readyz`): the database answered just now and holds the schema this binary
/// expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    pub status: String,
    pub database: String,
    pub schema_version: i64,
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
    #[schema(min_length = 1, max_length = 255)]
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
    #[schema(max_length = 255)]
    pub name: String,
    /// Defaults to this server's site.
    #[serde(default)]
    pub site_code: Option<SiteCode>,
    /// No enrolment is accepted from this time on; it must be in the future. Defaults to 7
    /// days after creation (`tally_core::agents::ENROLLMENT_TOKEN_DEFAULT_DAYS`).
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

/// A person to erase, by the account name an endpoint or an import gave (or its pseudonym).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgetUser {
    #[schema(min_length = 1, max_length = 255)]
    pub account: String,
}

/// What forgetting erased: the user made anonymous (`forgotten-ID`, its usage kept for
/// compliance) and the local accounts removed from inventories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ForgottenUser {
    pub user_id: Option<i64>,
    pub local_accounts: u64,
}

/// A pseudonym to resolve to the account behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolvePseudonym {
    #[schema(min_length = 1, max_length = 4096)]
    pub pseudonym: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResolvedPseudonym {
    pub pseudonym: String,
    pub account: String,
}
