//! The service's errors: what went wrong in the caller's terms, never in HTTP's. The server maps
//! each kind to a status; the CLI and the scheduler print or log the message, which says what
//! to do.

use tally_report::ReportError;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Something the caller named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The operation cannot run now (e.g. the task is running already).
    #[error("{0}")]
    Conflict(String),
    /// The caller asked for something malformed or not allowed.
    #[error("{0}")]
    Invalid(String),
    #[error("storage failed: {0}")]
    Store(#[from] tally_store::StoreError),
    /// Too much work is waiting; the caller should come back after `retry_after` (agents keep
    /// what they wanted to send).
    #[error("{message}")]
    Busy {
        message: String,
        retry_after: std::time::Duration,
    },
    /// The service failed on its own side (files it writes, rendering).
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl From<tally_core::ValidationError> for ServiceError {
    fn from(e: tally_core::ValidationError) -> Self {
        ServiceError::Invalid(e.to_string())
    }
}

impl From<ReportError> for ServiceError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::UnknownReport { .. } => ServiceError::NotFound(e.to_string()),
            e if e.is_caller_error() => ServiceError::Invalid(e.to_string()),
            e => ServiceError::Internal(e.to_string()),
        }
    }
}
