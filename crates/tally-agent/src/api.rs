//! The agent's side of the agent API.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
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

pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(server: &str, ca_file: Option<&Path>) -> Result<Self> {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading CA file {}", path.display()))?;
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        Ok(Self {
            http: builder.build()?,
            base: server.trim_end_matches('/').to_string(),
        })
    }

    pub async fn enroll(&self, request: &EnrollRequest) -> Result<EnrollResponse> {
        let resp = self
            .http
            .post(format!("{}/api/v1/agent/enroll", self.base))
            .json(request)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!(
                "enrolment refused: {} {}",
                resp.status(),
                resp.text().await?
            );
        }
        Ok(resp.json().await?)
    }

    fn auth(&self, creds: &Credentials, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.bearer_auth(format!("{}.{}", creds.agent_id, creds.agent_secret))
    }

    /// The policy, or `None` when unchanged since `etag`.
    pub async fn policy(
        &self,
        creds: &Credentials,
        etag: Option<&str>,
    ) -> Result<Option<(Policy, String)>> {
        let mut req = self.auth(
            creds,
            self.http.get(format!("{}/api/v1/agent/policy", self.base)),
        );
        if let Some(tag) = etag {
            req = req.header("if-none-match", tag);
        }
        let resp = req.send().await?;
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !resp.status().is_success() {
            bail!("policy refused: {} {}", resp.status(), resp.text().await?);
        }
        let tag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(Some((resp.json().await?, tag)))
    }

    /// Uploads a batch. A [`Refused`] error means the server looked at the batch and will not
    /// take it as it is; anything else is worth retrying unchanged.
    pub async fn upload(&self, creds: &Credentials, batch: &UsageBatch) -> Result<UsageAck> {
        let resp = self
            .auth(
                creds,
                self.http.post(format!("{}/api/v1/agent/usage", self.base)),
            )
            .json(batch)
            .send()
            .await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp.json().await?);
        }
        let message = resp.text().await.unwrap_or_default();
        if matches!(status.as_u16(), 400 | 413 | 422) {
            return Err(Refused { message }.into());
        }
        bail!("upload failed: {status} {message}")
    }

    pub async fn inventory(&self, creds: &Credentials, inventory: &Inventory) -> Result<()> {
        let resp = self
            .auth(
                creds,
                self.http
                    .post(format!("{}/api/v1/agent/inventory", self.base)),
            )
            .json(inventory)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!(
                "inventory refused: {} {}",
                resp.status(),
                resp.text().await?
            );
        }
        Ok(())
    }

    pub async fn heartbeat(&self, creds: &Credentials) -> Result<()> {
        let beat = Heartbeat {
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            sent_at: chrono::Utc::now(),
        };
        let resp = self
            .auth(
                creds,
                self.http
                    .post(format!("{}/api/v1/agent/heartbeat", self.base)),
            )
            .json(&beat)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("heartbeat refused: {}", resp.status());
        }
        Ok(())
    }
}

/// The server refused a usage batch as malformed or too large.
#[derive(Debug, thiserror::Error)]
#[error("the server refused the batch: {message}")]
pub struct Refused {
    pub message: String,
}
