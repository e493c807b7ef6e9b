//! Operator authentication: bearer tokens whose SHA-256 the store keeps, never the token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header::AUTHORIZATION, HeaderMap};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tally_core::{OperatorToken, Role};

use crate::rate_limit::Caller;
use crate::{ApiError, AppState};

/// Tokens start with this so they are recognisable in a leaked file or a secret scanner.
pub const TOKEN_PREFIX: &str = "tally_";

/// A new random token and the hash to store for it.
pub fn generate_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token. Tokens carry 256 random bits, so an unsalted fast hash is
/// enough: there is nothing to brute-force.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What follows `Bearer ` in the request's `Authorization` header, when there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The `<id>.<secret>` an agent or a child site sends as its bearer credentials; otherwise
/// why not, naming `whose` they should be (`no agent credentials`).
pub fn id_and_secret<'h>(
    headers: &'h HeaderMap,
    whose: &str,
) -> Result<(&'h str, &'h str), String> {
    let credentials = bearer(headers).ok_or_else(|| format!("no {whose} credentials"))?;
    (credentials.split_once('.')).ok_or_else(|| format!("malformed {whose} credentials"))
}

/// The operator making a request, from `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct Operator(pub OperatorToken);

impl Operator {
    /// Refuses read-only tokens a change.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.0.role {
            Role::Admin => Ok(()),
            Role::Auditor => Err(ApiError::Forbidden(format!(
                "token {:?} has the auditor role, which is read-only; use an admin token to make changes",
                self.0.name
            ))),
        }
    }

    /// The token's name: who made a change, in the audit log.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "no token; send Authorization: Bearer <token> (set TALLY_TOKEN for the CLI)"
                        .into(),
                )
            })?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be Bearer <token>".into())
        })?;
        let found = state
            .store
            .operator_token_by_hash(&hash_token(token.trim()))
            .await?;
        let operator = found.map(Operator).ok_or_else(|| {
            ApiError::Unauthorized(
                "unknown or revoked token; ask an administrator for a new one (tally up prints one)".into(),
            )
        })?;
        state.rate_limits.check(Caller::Operator(operator.0.id))?;
        Ok(operator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_stably() {
        let (a, ha) = generate_token();
        let (b, hb) = generate_token();
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(hash_token(&a), ha);
        assert_ne!(ha, a, "the stored form is not the token");
    }
}
