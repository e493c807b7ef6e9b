//! The agent's side of the agent API. Every call answers with a typed [`ApiError`], so the
//! agent decides what to do by kind, never by reading messages: a refused request is not sent
//! again as it is, an agent the server no longer accepts stops calling, anything else is
//! retried.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tally_core::wire::v1::{
    EnrollRequest, EnrollResponse, Heartbeat, Inventory, Policy, UsageAck, UsageBatch,
};

/// What enrolment gave this agent; stored in the state directory with mode 0600.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub agent_id: String,
    pub agent_secret: String,
    pub device_id: i64,
}

/// Why a call to the server did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server looked at the request and will not take it as it is (400, 413, 422): for a
    /// usage batch, a record in it is at fault.
    #[error("the server refused the {what}: {message}")]
    Refused { what: &'static str, message: String },
    /// The server does not accept this agent's credentials (401, 403): the agent was revoked,
    /// or the server does not know it. Retrying cannot help; re-enrolling does.
    #[error("the server does not accept this agent ({what}): {message}")]
    Unauthorized { what: &'static str, message: String },
    /// The server is limiting this agent's request rate (429) or is overloaded (503 with
    /// `Retry-After`): try again after `retry_after`, as the server asked, and not sooner.
    #[error("the server asks this agent to slow down ({what}); retry in {retry_after:?}")]
    Throttled {
        what: &'static str,
        retry_after: Duration,
    },
    /// Anything worth trying again unchanged: no connection, a timeout, a server error.
    #[error("{what} failed: {message}")]
    Transient { what: &'static str, message: String },
}

impl ApiError {
    fn network(what: &'static str, error: reqwest::Error) -> Self {
        Self::Transient {
            what,
            message: error.to_string(),
        }
    }
}

/// Classifies an answer by its status; a success is passed on.
async fn checked(
    what: &'static str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, ApiError> {
    let resp = sent.map_err(|e| ApiError::network(what, e))?;
    let status = resp.status();
    if status.is_success() || status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(resp);
    }
    // 429: this agent is over its rate; 503 with Retry-After: the server has more work waiting
    // than it takes on, and asks everyone to come back later. Each agent adds up to half again
    // at random, so a crowd told the same time does not return at once.
    let overloaded = status == reqwest::StatusCode::SERVICE_UNAVAILABLE
        && resp.headers().contains_key(reqwest::header::RETRY_AFTER);
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS || overloaded {
        let retry_after = retry_after(resp.headers()).mul_f64(1.0 + rand::random::<f64>() / 2.0);
        return Err(ApiError::Throttled { what, retry_after });
    }
    let message = format!("{status} {}", resp.text().await.unwrap_or_default());
    Err(match status.as_u16() {
        400 | 413 | 422 => ApiError::Refused { what, message },
        401 | 403 => ApiError::Unauthorized { what, message },
        _ => ApiError::Transient { what, message },
    })
}

/// How long a 429 or 503 asks to wait: its `Retry-After` in seconds (the form Tally's server sends),
/// else a minute; never more than an hour, whatever a server claims.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    let secs = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(60);
    Duration::from_secs(secs.clamp(1, 3600))
}

/// Reads a successful answer's JSON body.
async fn body<T: serde::de::DeserializeOwned>(
    what: &'static str,
    resp: reqwest::Response,
) -> Result<T, ApiError> {
    resp.json().await.map_err(|e| ApiError::network(what, e))
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    /// Until when the server asked this agent to send nothing (its last 429's `Retry-After`),
    /// shared by every task that calls it, so no task spends the budget another waits for.
    quiet_until: Arc<Mutex<Option<Instant>>>,
}

impl Api {
    pub fn new(server: &str, ca_file: Option<&Path>) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading CA file {}", path.display()))?;
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        Ok(Self {
            http: builder.build()?,
            base: server.trim_end_matches('/').to_string(),
            quiet_until: Arc::default(),
        })
    }

    /// Sends `req`, unless the server asked for quiet; remembers a new request for quiet.
    async fn send(
        &self,
        what: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let quiet_until = *self.quiet_until.lock().expect("not poisoned");
        if let Some(wait) = quiet_until.and_then(|t| t.checked_duration_since(Instant::now())) {
            return Err(ApiError::Throttled {
                what,
                retry_after: wait,
            });
        }
        let answer = checked(what, req.send().await).await;
        if let Err(ApiError::Throttled { retry_after, .. }) = &answer {
            *self.quiet_until.lock().expect("not poisoned") = Some(Instant::now() + *retry_after);
        }
        answer
    }

    pub async fn enroll(&self, request: &EnrollRequest) -> Result<EnrollResponse, ApiError> {
        const WHAT: &str = "enrolment";
        let req = self
            .http
            .post(format!("{}/api/v1/agent/enroll", self.base))
            .json(request);
        body(WHAT, self.send(WHAT, req).await?).await
    }

    fn auth(&self, creds: &Credentials, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.bearer_auth(format!("{}.{}", creds.agent_id, creds.agent_secret))
    }

    /// The policy, or `None` when unchanged since `etag`.
    pub async fn policy(
        &self,
        creds: &Credentials,
        etag: Option<&str>,
    ) -> Result<Option<(Policy, String)>, ApiError> {
        const WHAT: &str = "policy";
        let mut req = self.auth(
            creds,
            self.http.get(format!("{}/api/v1/agent/policy", self.base)),
        );
        if let Some(tag) = etag {
            req = req.header("if-none-match", tag);
        }
        let resp = self.send(WHAT, req).await?;
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        let tag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(Some((body(WHAT, resp).await?, tag)))
    }

    /// Uploads a batch.
    pub async fn upload(
        &self,
        creds: &Credentials,
        batch: &UsageBatch,
    ) -> Result<UsageAck, ApiError> {
        const WHAT: &str = "batch";
        let req = self
            .auth(
                creds,
                self.http.post(format!("{}/api/v1/agent/usage", self.base)),
            )
            .json(batch);
        body(WHAT, self.send(WHAT, req).await?).await
    }

    pub async fn inventory(
        &self,
        creds: &Credentials,
        inventory: &Inventory,
    ) -> Result<(), ApiError> {
        let req = self
            .auth(
                creds,
                self.http
                    .post(format!("{}/api/v1/agent/inventory", self.base)),
            )
            .json(inventory);
        self.send("inventory", req).await.map(drop)
    }

    /// Says the agent is alive, with how many records its spool holds.
    pub async fn heartbeat(
        &self,
        creds: &Credentials,
        spooled_records: Option<u64>,
    ) -> Result<(), ApiError> {
        let beat = Heartbeat {
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            sent_at: chrono::Utc::now(),
            spooled_records,
        };
        let req = self
            .auth(
                creds,
                self.http
                    .post(format!("{}/api/v1/agent/heartbeat", self.base)),
            )
            .json(&beat);
        self.send("heartbeat", req).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server's answer with `status` and, when given, a `Retry-After` of `secs`.
    fn answer(status: u16, retry_after: Option<&str>) -> reqwest::Response {
        let mut builder = http::Response::builder().status(status);
        if let Some(secs) = retry_after {
            builder = builder.header("retry-after", secs);
        }
        reqwest::Response::from(builder.body("{}").unwrap())
    }

    /// 429 and an overloaded server's 503 with `Retry-After` hold the agent back at least as
    /// long as asked (and at most half again, its jitter); a 503 without one is a plain
    /// failure, retried after the agent's own backoff.
    #[tokio::test]
    async fn overload_and_rate_limit_hold_the_agent_back_as_asked() {
        for status in [429, 503] {
            match checked("upload", Ok(answer(status, Some("40")))).await {
                Err(ApiError::Throttled { retry_after, .. }) => {
                    let secs = retry_after.as_secs_f64();
                    assert!((40.0..=60.0).contains(&secs), "{status}: {secs}");
                }
                other => panic!("{status}: expected throttled, got {other:?}"),
            }
        }
        let plain = checked("upload", Ok(answer(503, None))).await;
        assert!(
            matches!(plain, Err(ApiError::Transient { .. })),
            "{plain:?}"
        );
    }
}
