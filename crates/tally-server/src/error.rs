use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub use tally_api::ErrorBody;
use tally_store::ErrorKind;

/// An error a handler returns; it becomes a JSON [`ErrorBody`] with the right status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Over the caller's request-rate budget; `Retry-After` says when to come back.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// The server has more work waiting than it takes on; `Retry-After` says when to come back.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u64,
    },
    #[error("storage failed: {0}")]
    Store(#[from] tally_store::StoreError),
    #[error("{0}")]
    Internal(String),
    /// Any other refusal with its status (405, 408, 415, …); its code is the status's
    /// reason in snake case (`method_not_allowed`).
    #[error("{1}")]
    Status(StatusCode, String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
            }
            ApiError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Store(e) => match e.kind() {
                ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
                ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
                ErrorKind::Invalid => (StatusCode::BAD_REQUEST, "bad_request"),
                ErrorKind::Unavailable | ErrorKind::Failed => {
                    (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
                }
            },
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Status(status, _) => (*status, status_code_name(*status)),
        }
    }
}

/// The machine-readable code for a status no variant names.
fn status_code_name(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable_entity",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            // A missing row, a clash or a refused value is the caller's to fix: say what it
            // is, as any other refusal does.
            ApiError::Store(e) if status != StatusCode::SERVICE_UNAVAILABLE => e.to_string(),
            ApiError::Store(e) => {
                tracing::error!(error = %e, "request failed in storage");
                self.to_string()
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "request failed");
                self.to_string()
            }
            _ => self.to_string(),
        };
        let body = ErrorBody {
            error: code.to_string(),
            message,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::TooManyRequests {
            retry_after_secs, ..
        }
        | ApiError::Busy {
            retry_after_secs, ..
        } = self
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}

impl From<tally_service::ServiceError> for ApiError {
    fn from(e: tally_service::ServiceError) -> Self {
        use tally_service::ServiceError as E;
        match e {
            E::NotFound(m) => ApiError::NotFound(m),
            E::Conflict(m) => ApiError::Conflict(m),
            E::Invalid(m) => ApiError::BadRequest(m),
            E::Store(e) => ApiError::Store(e),
            E::Busy {
                message,
                retry_after,
            } => ApiError::Busy {
                message,
                retry_after_secs: retry_after.as_secs().max(1),
            },
            E::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<tally_core::ValidationError> for ApiError {
    fn from(e: tally_core::ValidationError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_store::StoreError;

    #[test]
    fn store_errors_answer_by_their_kind() {
        let status = |e: StoreError| ApiError::Store(e).status_and_code();
        assert_eq!(
            status(StoreError::NotFound("no row".into())),
            (StatusCode::NOT_FOUND, "not_found")
        );
        assert_eq!(
            status(StoreError::Conflict("taken".into())),
            (StatusCode::CONFLICT, "conflict")
        );
        assert_eq!(
            status(StoreError::Invalid("NUL".into())),
            (StatusCode::BAD_REQUEST, "bad_request")
        );
        assert_eq!(
            status(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
            (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
        );
        let corrupt = StoreError::Corrupt {
            column: "devices.status",
            value: "lost".into(),
        };
        assert_eq!(
            status(corrupt),
            (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
        );
    }

    /// An overloaded service asks callers to come back: 503 with the time in `Retry-After`.
    #[test]
    fn busy_answers_503_with_retry_after() {
        let busy = tally_service::ServiceError::Busy {
            message: "queue full".into(),
            retry_after: std::time::Duration::from_secs(60),
        };
        let response = ApiError::from(busy).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let retry = response.headers().get(axum::http::header::RETRY_AFTER);
        assert_eq!(retry.and_then(|v| v.to_str().ok()), Some("60"));
    }
}
