//! What a call to the server can end in: the server's refusal (status, code, message), a
//! server that cannot be reached (with the hint the CLI has always printed), or an answer
//! this client cannot read.

use reqwest::StatusCode;

/// A failed API call. Its text is what the CLI prints after `error: `.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no token: set TALLY_TOKEN or pass --token (tally up prints an admin token)")]
    NoToken,
    #[error("cannot read the CA file {}", .path.display())]
    CaFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a PEM certificate", .path.display())]
    CaPem {
        path: std::path::PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
    /// Nothing answered (refused, DNS, TLS, timeout); the text names every cause, since
    /// reqwest's own message hides them, and says what to check.
    #[error("cannot reach Tally at {url}: {}; {hint}", causes(.error))]
    Unreachable {
        url: String,
        error: reqwest::Error,
        hint: &'static str,
    },
    /// The server answered with an error status; `code` is its machine-readable `error`.
    #[error("{status}: {message}")]
    Api {
        status: StatusCode,
        code: Option<String>,
        message: String,
    },
    #[error("reading the server's answer")]
    Read(#[source] reqwest::Error),
    #[error("the server answered {status} with non-JSON")]
    NotJson {
        status: StatusCode,
        #[source]
        source: serde_json::Error,
    },
    #[error("the server answered {status} with JSON this client does not read")]
    Unexpected {
        status: StatusCode,
        #[source]
        source: serde_json::Error,
    },
}

impl ClientError {
    /// The HTTP status of a refusal; `None` when the server never answered with one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. }
            | ClientError::NotJson { status, .. }
            | ClientError::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's machine-readable error code (`not_found`, `conflict`, …), when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// An error with its sources, since reqwest's own message hides the cause (refused, TLS...).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
