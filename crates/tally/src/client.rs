//! A small client for the admin API, used by the CLI verbs.

use anyhow::{anyhow, bail, Context, Result};
use reqwest::Method;
use serde_json::Value;

pub struct Client {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Client {
    /// `ca_file` adds a PEM CA to the trusted roots, for servers with a private CA.
    pub fn new(
        url: &str,
        token: Option<String>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self> {
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?;
            let ca = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
            builder = builder.add_root_certificate(ca);
        }
        let http = builder.build().context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            url: url.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// Sends a request and returns the JSON body (Null for an empty one); an error response
    /// becomes an error carrying the server's message.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let Some(token) = &self.token else {
            bail!("no token: set TALLY_TOKEN or pass --token (tally up prints an admin token)");
        };
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            anyhow!(
                "cannot reach Tally at {}: {}; is the server running (tally up)? Set TALLY_URL or --url, and --ca-file for a private CA",
                self.url,
                causes(&e)
            )
        })?;
        let status = resp.status();
        let text = resp.text().await.context("reading the server's answer")?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .with_context(|| format!("the server answered {status} with non-JSON"))?
        };
        if !status.is_success() {
            let message = value["message"].as_str().unwrap_or(&text);
            bail!("{status}: {message}");
        }
        Ok(value)
    }

    /// GETs a body that is not JSON (a rendered report), calling `progress` with the bytes
    /// received so far and the total when the server sent one.
    pub async fn download(
        &self,
        path: &str,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<Vec<u8>> {
        let Some(token) = &self.token else {
            bail!("no token: set TALLY_TOKEN or pass --token (tally up prints an admin token)");
        };
        let url = format!("{}{path}", self.url);
        let mut resp = self.http.get(&url).bearer_auth(token).send().await.map_err(|e| {
            anyhow!(
                "cannot reach Tally at {}: {}; is the server running (tally up)? Set TALLY_URL or --url",
                self.url,
                causes(&e)
            )
        })?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            bail!("{status}: {}", value["message"].as_str().unwrap_or(&text));
        }
        let total = resp.content_length();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.context("reading the server's answer")? {
            body.extend_from_slice(&chunk);
            progress(body.len() as u64, total);
        }
        Ok(body)
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, None).await
    }

    /// Every row of a paged list, following `after=<last id>`.
    pub async fn get_all(&self, path: &str) -> Result<Vec<Value>> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut rows = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .get(&format!("{path}{sep}limit=1000&after={after}"))
                .await?;
            let page = page.as_array().cloned().unwrap_or_default();
            let Some(last) = page.last() else { break };
            after = last["id"].as_i64().context("paged rows carry an id")?;
            rows.extend(page);
        }
        Ok(rows)
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
