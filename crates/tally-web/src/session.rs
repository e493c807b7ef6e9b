//! Sign-in, sign-out and the signed-in operator of a request. The session secret travels only in
//! an `HttpOnly`, `SameSite=Strict` cookie (`Secure` over HTTPS); the sign-in form itself is
//! protected by a short-lived random cookie whose derived token the form must echo, so even
//! signing in cannot be forged from another site.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::Utc;
use maud::html;
use rand::RngCore;
use serde::Deserialize;
use tally_core::{OperatorToken, Role};
use tally_service::web_sessions::{self, csrf_token};

use crate::forms::{csrf_input, same};
use crate::{layout, Https, WebError, WebState};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tally_session";
/// The sign-in form's own cookie, for its CSRF token.
pub const SIGN_IN_COOKIE: &str = "tally_signin";

/// The operator of a request with a live session.
pub struct Signed {
    pub operator: OperatorToken,
    secret: String,
}

impl Signed {
    /// The token every form of this session carries.
    pub fn csrf(&self) -> String {
        csrf_token(&self.secret)
    }

    /// Whether the operator may change things (and so is shown the controls that do).
    pub fn is_admin(&self) -> bool {
        self.operator.role == Role::Admin
    }

    /// Lets a POST through only with this session's CSRF token.
    pub fn check_csrf(&self, sent: &str) -> Result<(), WebError> {
        match same(sent, &self.csrf()) {
            true => Ok(()),
            false => Err(WebError::Forbidden(
                "the form's CSRF token is missing or wrong; reload the page and try again".into(),
            )),
        }
    }

    /// Lets a change through only with this session's CSRF token and from an admin: the
    /// auditor's pages show no such control, and this refuses a forged one.
    pub fn may_change(&self, sent: &str) -> Result<(), WebError> {
        self.check_csrf(sent)?;
        match self.operator.role {
            Role::Admin => Ok(()),
            Role::Auditor => Err(WebError::Forbidden(format!(
                "{} has the auditor role, which is read-only; sign in with an admin token to make changes",
                self.operator.name
            ))),
        }
    }

    pub fn name(&self) -> &str {
        &self.operator.name
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

impl FromRequestParts<WebState> for Signed {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        let secret = cookie(&parts.headers, SESSION_COOKIE).ok_or(WebError::NotSignedIn)?;
        let now = Utc::now();
        let found = web_sessions::session(&state.service, secret, now, state.sessions).await?;
        let session = found.ok_or(WebError::NotSignedIn)?;
        Ok(Signed {
            operator: session.operator,
            secret: secret.to_string(),
        })
    }
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, the whole site, `Secure` over HTTPS;
/// an empty value with no age deletes the cookie.
fn set_cookie(name: &str, value: &str, max_age: i64, https: bool) -> HeaderValue {
    let secure = if https { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).expect("cookie values are hex")
}

pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sign-in form with a fresh form cookie, `error` shown above it.
fn sign_in_form(status: StatusCode, error: Option<&str>, https: bool) -> Response {
    let nonce = random_hex();
    let body = html! {
        form.sign-in method="post" action="/sign-in" {
            h1 { "Sign in to Tally" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            (csrf_input(&csrf_token(&nonce)))
            label for="token" { "Operator token" }
            input #token type="password" name="token" autocomplete="off" required
                maxlength=(web_sessions::MAX_TOKEN_CHARS);
            p.hint { "An admin or auditor token, as " code { "tally up" } " or " code { "tally tokens create" } " printed it." }
            button type="submit" { "Sign in" }
        }
    };
    let mut response = (status, layout::bare_markup("Sign in", body)).into_response();
    let cookie = set_cookie(SIGN_IN_COOKIE, &nonce, 3600, https);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

pub async fn sign_in_page(https: Option<Extension<Https>>) -> Response {
    sign_in_form(StatusCode::OK, None, https.is_some())
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

pub async fn sign_in(
    State(state): State<WebState>,
    https: Option<Extension<Https>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, WebError> {
    let https = https.is_some();
    let nonce = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if nonce.is_empty() || !same(&form.csrf, &csrf_token(nonce)) {
        return Err(WebError::Forbidden(
            "the sign-in form's CSRF token is missing or wrong; open /sign-in again".into(),
        ));
    }
    let now = Utc::now();
    let opened = web_sessions::sign_in(&state.service, &form.token, now, state.sessions).await?;
    let Some(opened) = opened else {
        let error = "unknown or revoked token; ask an administrator for a new one";
        return Ok(sign_in_form(StatusCode::UNAUTHORIZED, Some(error), https));
    };
    tracing::info!(operator = %opened.operator.name, "web console: signed in");
    let age = state.sessions.absolute.num_seconds();
    let mut response = Redirect::to("/").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &opened.secret, age, https),
    );
    headers.append(header::SET_COOKIE, set_cookie(SIGN_IN_COOKIE, "", 0, https));
    Ok(response)
}

/// A form that carries nothing but the CSRF token: sign-out, a revoke, a remove, a run.
#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

pub async fn sign_out(
    State(state): State<WebState>,
    https: Option<Extension<Https>>,
    signed: Signed,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    signed.check_csrf(&form.csrf)?;
    web_sessions::sign_out(&state.service, signed.name(), &signed.secret).await?;
    let mut response = Redirect::to("/sign-in").into_response();
    let cookie = set_cookie(SESSION_COOKIE, "", 0, https.is_some());
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}
