//! Why a page cannot be shown or a change was refused, as a page of its own with the right
//! status. Service refusals a form can fix are shown on the form instead (see `licenses`).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use tally_service::ServiceError;

use crate::layout;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No live session: the browser is sent to the sign-in page.
    #[error("sign in first")]
    NotSignedIn,
    /// The CSRF token is missing or wrong, or the operator may not make the change.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// An upload over its limit.
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<tally_store::StoreError> for WebError {
    fn from(e: tally_store::StoreError) -> Self {
        WebError::Service(e.into())
    }
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::NotSignedIn => StatusCode::SEE_OTHER,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::NotFound(_) | WebError::Service(ServiceError::NotFound(_)) => {
                StatusCode::NOT_FOUND
            }
            WebError::Service(ServiceError::Invalid(_)) => StatusCode::BAD_REQUEST,
            WebError::Service(ServiceError::Conflict(_)) => StatusCode::CONFLICT,
            WebError::Service(ServiceError::Busy { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Service(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::NotSignedIn = self {
            return Redirect::to("/sign-in").into_response();
        }
        let status = self.status();
        // The store's own words stay in the log; the page says what failed.
        let message = match &self {
            WebError::Service(ServiceError::Store(e)) => {
                tracing::error!(error = %e, "web console: storage failed");
                "the database failed; see the server's log".to_string()
            }
            other => other.to_string(),
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let page = layout::bare(title, &message);
        let mut response = (status, page).into_response();
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        response
    }
}
