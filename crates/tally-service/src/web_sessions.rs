//! Sign-in sessions of the web console. A browser proves who it is with a random session secret
//! in a cookie; the store keeps only the secret's SHA-256, so a copy of the database opens no
//! session. A session ends when its operator signs out, when it has been idle too long, when it
//! is older than the absolute limit, or when its operator token is revoked. Each form carries a
//! CSRF token derived from the session secret, so it needs no storage and a page of one session
//! cannot post into another.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tally_core::OperatorToken;
use tally_store::WebSession;

use crate::audit::entry;
use crate::{Result, Service};

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Unused this long, a session ends.
    pub idle: Duration,
    /// This long after sign-in, a session ends however busy.
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
        }
    }
}

/// The longest operator token a sign-in form may send; real ones are 70 characters.
pub const MAX_TOKEN_CHARS: usize = 256;

/// A session just opened: its secret (for the cookie, never stored) and its operator.
#[derive(Debug, Clone)]
pub struct Opened {
    pub secret: String,
    pub operator: OperatorToken,
}

/// The stored form of a token or session secret: SHA-256, hex. Both carry 256 random bits, so
/// a fast unsalted hash leaves nothing to brute-force.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of the session whose secret is `secret`.
pub fn csrf_token(secret: &str) -> String {
    hex::encode(Sha256::digest(format!("tally-csrf:{secret}").as_bytes()))
}

/// Opens a session for the live operator token `token`; `None` when the token is unknown,
/// revoked or too long to be one. Stale sessions are cleared on the way.
pub async fn sign_in(
    service: &Service,
    token: &str,
    now: DateTime<Utc>,
    policy: SessionPolicy,
) -> Result<Option<Opened>> {
    let token = token.trim();
    if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
        return Ok(None);
    }
    let store = service.store();
    let Some(operator) = store.operator_token_by_hash(&secret_hash(token)).await? else {
        return Ok(None);
    };
    store
        .delete_stale_web_sessions(now - policy.idle, now - policy.absolute)
        .await?;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let target = format!("token:{}", operator.id);
    let audit = entry(&operator.name, "web.sign_in", target, ());
    store
        .create_web_session(&secret_hash(&secret), operator.id, now, Some(&audit))
        .await?;
    Ok(Some(Opened { secret, operator }))
}

/// How often a session's last use is written: not on every page, which would make each read a
/// write.
const TOUCH_EVERY: Duration = Duration::seconds(30);

/// The live session whose secret is `secret` at `now`; `None` when there is none, it expired
/// (and is then deleted) or its token was revoked.
pub async fn session(
    service: &Service,
    secret: &str,
    now: DateTime<Utc>,
    policy: SessionPolicy,
) -> Result<Option<WebSession>> {
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let store = service.store();
    let hash = secret_hash(secret);
    let Some(found) = store.web_session(&hash).await? else {
        return Ok(None);
    };
    let expired =
        now - found.last_seen_at > policy.idle || now - found.created_at > policy.absolute;
    if expired {
        store.delete_web_session(&hash, None).await?;
        return Ok(None);
    }
    if now - found.last_seen_at > TOUCH_EVERY {
        store.touch_web_session(&hash, now).await?;
    }
    Ok(Some(found))
}

/// Ends the session whose secret is `secret`, as its operator `actor`.
pub async fn sign_out(service: &Service, actor: &str, secret: &str) -> Result<()> {
    let audit = entry(actor, "web.sign_out", "web_session".into(), ());
    service
        .store()
        .delete_web_session(&secret_hash(secret), Some(&audit))
        .await?;
    Ok(())
}
