//! The transport under the typed endpoints: one bearer-authenticated request, its answer read
//! as the type asked for, and an error status turned into [`ClientError::Api`].

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ClientError;

/// What the CLI has always said when nothing answers an API call.
const HINT: &str =
    "is the server running (tally up)? Set TALLY_URL or --url, and --ca-file for a private CA";
/// The same for a report download, which has always left out the CA hint.
const DOWNLOAD_HINT: &str = "is the server running (tally up)? Set TALLY_URL or --url";

/// An HTTPS client that verifies servers against the system roots plus, when given, the PEM
/// CA in `ca_file` (a private CA): what the CLI and a child site talking to its parent use.
pub fn http_client(
    timeout: std::time::Duration,
    ca_file: Option<&std::path::Path>,
) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder().timeout(timeout);
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
            path: path.into(),
            source,
        })?;
        let ca = reqwest::Certificate::from_pem(&pem).map_err(|source| ClientError::CaPem {
            path: path.into(),
            source,
        })?;
        builder = builder.add_root_certificate(ca);
    }
    builder.build().map_err(ClientError::Build)
}

/// A client of one Tally server's admin API, as one operator (the token).
pub struct Client {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

/// The fields of an error body this client reads; anything else in it is ignored.
#[derive(Deserialize)]
struct ErrorFields {
    error: Option<String>,
    message: Option<String>,
}

/// A request with no body.
pub(crate) const NO_BODY: Option<&()> = None;

impl Client {
    /// `ca_file` adds a PEM CA to the trusted roots, for servers with a private CA. Without a
    /// token every call fails with [`ClientError::NoToken`], which says how to get one.
    pub fn new(
        url: &str,
        token: Option<String>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, ClientError> {
        let http = http_client(std::time::Duration::from_secs(60), ca_file)?;
        Ok(Self {
            http,
            url: url.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// Sends a request and returns the answer's status and text; an error status becomes
    /// [`ClientError::Api`] with the server's code and message.
    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(StatusCode, String), ClientError> {
        let resp = self.start(method, path, body, HINT).await?;
        let status = resp.status();
        let text = resp.text().await.map_err(ClientError::Read)?;
        if status.is_success() {
            return Ok((status, text));
        }
        if text.is_empty() {
            return Err(api_error(status, None, text));
        }
        match serde_json::from_str::<ErrorFields>(&text) {
            Ok(fields) => Err(api_error(
                status,
                fields.error,
                fields.message.unwrap_or(text),
            )),
            // Not the JSON error contract (a proxy's page, a plain-text refusal): the
            // server's own words are still the best explanation.
            Err(_) => Err(api_error(status, None, cut(text))),
        }
    }

    /// The request sent, before its answer is read.
    async fn start<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        hint: &'static str,
    ) -> Result<reqwest::Response, ClientError> {
        let token = self.token.as_ref().ok_or(ClientError::NoToken)?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.map_err(|error| ClientError::Unreachable {
            url: self.url.clone(),
            error,
            hint,
        })
    }

    /// A call whose answer is JSON of type `T`.
    pub(crate) async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let (status, text) = self.send(method, path, body).await?;
        serde_json::from_str(&text).map_err(|source| match source.is_data() {
            true => ClientError::Unexpected { status, source },
            false => ClientError::NotJson { status, source },
        })
    }

    /// A call answered with no body (204), such as a delete.
    pub(crate) async fn call_empty<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), ClientError> {
        self.send(method, path, body).await.map(|_| ())
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, NO_BODY).await
    }

    pub(crate) async fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.call_empty(Method::DELETE, path, NO_BODY).await
    }

    /// Every row of a paged list, following `after=<last id>`.
    pub(crate) async fn get_all<T: DeserializeOwned + Paged>(
        &self,
        path: &str,
    ) -> Result<Vec<T>, ClientError> {
        let mut rows = Vec::new();
        let mut after = 0;
        loop {
            let page: Vec<T> = self
                .get(&format!("{path}?limit=1000&after={after}"))
                .await?;
            let Some(last) = page.last() else { break };
            after = last.page_id();
            rows.extend(page);
        }
        Ok(rows)
    }

    /// GETs a body that is not JSON (a rendered report), calling `progress` with the bytes
    /// received so far and the total when the server sent one.
    pub(crate) async fn download(
        &self,
        path: &str,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<Vec<u8>, ClientError> {
        let mut resp = self
            .start(Method::GET, path, NO_BODY, DOWNLOAD_HINT)
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            let fields = serde_json::from_str::<ErrorFields>(&text).ok();
            let (code, message) = fields.map_or((None, None), |f| (f.error, f.message));
            return Err(api_error(status, code, message.unwrap_or(text)));
        }
        let total = resp.content_length();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(ClientError::Read)? {
            body.extend_from_slice(&chunk);
            progress(body.len() as u64, total);
        }
        Ok(body)
    }
}

/// Server text longer than this is cut where it is quoted in an error (a proxy's HTML page).
const MAX_QUOTED: usize = 1000;

/// `text` cut to [`MAX_QUOTED`] characters, saying so when it is.
fn cut(text: String) -> String {
    match text.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{} …", &text[..end]),
        None => text,
    }
}

fn api_error(status: StatusCode, code: Option<String>, message: String) -> ClientError {
    ClientError::Api {
        status,
        code,
        message,
    }
}

/// Rows of a paged list, which the next page starts after.
pub(crate) trait Paged {
    fn page_id(&self) -> i64;
}

impl Paged for tally_core::Device {
    fn page_id(&self) -> i64 {
        self.id
    }
}

impl Paged for tally_core::User {
    fn page_id(&self) -> i64 {
        self.id
    }
}

impl Paged for tally_core::file::StoredFile {
    fn page_id(&self) -> i64 {
        self.id
    }
}

/// Percent-encodes a query value (letters, digits and `-._~` stay as they are).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
