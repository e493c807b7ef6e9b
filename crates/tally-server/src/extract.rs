//! One error contract: every 4xx and 5xx the server sends is the JSON [`ErrorBody`]
//! (`{"error": code, "message": sentence}`), including the refusals axum makes before a handler
//! runs. Handlers take these extractors instead of axum's (whose rejections are plain text),
//! unknown paths and methods answer through [`not_found`] and [`method_not_allowed`], and
//! [`json_errors`] rewrites whatever error is still not JSON (a layer's timeout or body limit).
//!
//! [`ErrorBody`]: tally_api::ErrorBody

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A refusal from one of axum's extractors, with its status and text, as an [`ApiError`].
fn rejected(status: StatusCode, text: String) -> ApiError {
    match status {
        StatusCode::BAD_REQUEST => ApiError::BadRequest(text),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge(format!("{text}; send smaller batches"))
        }
        s if s.is_server_error() => ApiError::Internal(text),
        s => ApiError::Status(s, text),
    }
}

/// `axum::extract::Path` answering 400 with the JSON body: `/api/v1/rules/9223372036854775808`
/// is "Invalid URL: Cannot parse `9223372036854775808` to a `i64`".
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(e) => Err(rejected(e.status(), e.body_text())),
        }
    }
}

/// `axum::extract::Query` answering 400 with the JSON body, naming the parameter.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(e) => {
                let text = query_refused(parts.uri.query().unwrap_or_default(), &e.body_text());
                Err(rejected(e.status(), text))
            }
        }
    }
}

/// What chrono says of a date it cannot read.
const DATE_ERRORS: [&str; 5] = [
    "input is out of range",
    "input contains invalid characters",
    "premature end of input",
    "trailing input",
    "input is not enough for unique date and time",
];

/// Parameter values longer than this are cut where a refusal quotes them.
const MAX_QUOTED_VALUE: usize = 100;

/// A refused query parameter as a sentence naming it and the value given (`as_of: 2026-13-45
/// is not a date (YYYY-MM-DD)`), from axum's "Failed to deserialize query string: as_of: input
/// is out of range".
fn query_refused(query: &str, text: &str) -> String {
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(text);
    let Some((field, why)) = detail.split_once(": ") else {
        return detail.to_string();
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let Some((_, value)) = pairs.iter().find(|(name, _)| name == field) else {
        return detail.to_string();
    };
    let value: String = value.chars().take(MAX_QUOTED_VALUE).collect();
    match DATE_ERRORS.contains(&why) {
        true => format!("{field}: {value} is not a date (YYYY-MM-DD)"),
        false => format!("{field}: {value} is not accepted: {why}"),
    }
}

/// A JSON object body read into `T`. Refused with 400: a body without a JSON content type, a
/// body that is not an object (serde would read a struct from an array by position, so
/// `["x","auditor"]` would make a token), and malformed JSON (serde's message names the field
/// and position); with 413 an oversized body.
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::BadRequest(
                "Expected request with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| rejected(e.status(), e.body_text()))?;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(ApiError::BadRequest(
                "the body must be a JSON object ({\"field\": value, …})".into(),
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// `application/json`, or any `application/…+json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence.starts_with("application/") && essence.ends_with("+json")
}

/// The answer for a path no route serves.
pub(crate) async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no endpoint {method} {}; see /api/v1/openapi.json",
        uri.path()
    ))
}

/// The answer for a method a path does not serve (axum adds the `Allow` header).
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::Status(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} does not take {method}; see the Allow header",
            uri.path()
        ),
    )
}

/// Error bodies longer than this are cut when rewritten (they are a sentence).
const MAX_ERROR_TEXT: usize = 4096;

/// Rewrites an error answer that is not JSON into the [`ErrorBody`](tally_api::ErrorBody),
/// keeping its status and headers and using its text (or the status's reason) as the message.
pub(crate) async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_ERROR_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = match text.is_empty() {
        true => status.canonical_reason().unwrap_or("refused").to_string(),
        false => text,
    };
    let mut rewritten = ApiError::Status(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            rewritten.headers_mut().insert(name, value.clone());
        }
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, v.parse().unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn refused_parameters_are_named_with_their_value() {
        let axum = "Failed to deserialize query string: as_of: input is out of range";
        assert_eq!(
            query_refused("app=Office&as_of=2026-13-45", axum),
            "as_of: 2026-13-45 is not a date (YYYY-MM-DD)"
        );
        let days = "Failed to deserialize query string: days: invalid digit found in string";
        assert_eq!(
            query_refused("days=ten", days),
            "days: ten is not accepted: invalid digit found in string"
        );
        assert_eq!(query_refused("", "something else"), "something else");
    }
}
