//! The page shell (navigation, who is signed in, sign-out), the console's stylesheet and
//! script, the headers every page carries, and how figures are written (money with its
//! currency, statuses in words, names safe in URLs).

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use tally_core::compliance::{Money, Status};

use crate::forms::csrf_input;
use crate::session::Signed;

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

/// The main sections, for the navigation: (path, title).
const SECTIONS: [(&str, &str); 11] = [
    ("/", "Dashboard"),
    ("/applications", "Applications"),
    ("/licenses", "Licenses"),
    ("/reclaim", "Reclaim"),
    ("/devices", "Devices"),
    ("/users", "Users"),
    ("/rules", "Metering"),
    ("/org", "Org tree"),
    ("/import", "Import"),
    ("/reports", "Reports"),
    ("/admin", "Admin"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Tally" }
            link rel="stylesheet" href="/static/console.css";
            script src="/static/console.js" defer {}
        }
    }
}

/// A page of the console for the signed-in operator, `section` marked in the navigation.
pub fn page(signed: &Signed, section: &str, title: &str, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to the content" }
                header.top {
                    a.brand href="/" { "Tally" }
                    nav aria-label="Main" {
                        @for (path, name) in SECTIONS {
                            a href=(path) aria-current=[(path == section).then_some("page")] { (name) }
                        }
                    }
                    div.who {
                        span #operator { (signed.name()) " · " (role_text(signed)) }
                        form method="post" action="/sign-out" {
                            (csrf_input(&signed.csrf()))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" { h1 { (title) } (body) }
            }
        }
    };
    Html(markup.into_string())
}

fn role_text(signed: &Signed) -> &'static str {
    match signed.is_admin() {
        true => "admin",
        false => "auditor (read-only)",
    }
}

/// A page without navigation: sign-in and errors.
pub fn bare_markup(title: &str, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" { (head(title)) body.bare { main { (body) } } }
    };
    Html(markup.into_string())
}

/// An error page saying `message`.
pub fn bare(title: &str, message: &str) -> Html<String> {
    bare_markup(
        title,
        html! { h1 { (title) } p.error role="alert" { (message) } p { a href="/" { "Back to the dashboard" } } },
    )
}

pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    response
}

/// Headers on every console answer: scripts and styles from this server only, no framing, no
/// caching of pages that hold the estate's figures.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in set {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// `12,345.90 EUR`.
pub fn money(m: &Money) -> String {
    tally_service::reports::money_text(m)
}

/// Sums in several currencies, never added together; `—` for none.
pub fn monies<'m>(items: impl IntoIterator<Item = &'m Money>) -> String {
    let texts: Vec<String> = items.into_iter().map(money).collect();
    match texts.is_empty() {
        true => "—".into(),
        false => texts.join(" + "),
    }
}

pub fn status_text(status: &Status) -> &'static str {
    match status {
        Status::Compliant => "compliant",
        Status::UnderLicensed => "under-licensed",
        Status::OverLicensed => "over-licensed",
        Status::NotCalculated => "not calculated",
    }
}

/// The CSS class that colours a status.
pub fn status_class(status: &Status) -> &'static str {
    match status {
        Status::Compliant => "ok",
        Status::UnderLicensed => "bad",
        Status::OverLicensed => "warn",
        Status::NotCalculated => "muted",
    }
}

/// `processor_cores` → `processor cores`.
pub fn words(code: &str) -> String {
    code.replace('_', " ")
}

/// `text` percent-encoded for a path segment or a query value: every byte but letters,
/// digits and `-._~`.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The page of an application, as of `as_of` when given.
pub fn app_href(name: &str, as_of: Option<chrono::NaiveDate>) -> String {
    match as_of {
        Some(day) => format!("/applications/{}?as_of={day}", encode(name)),
        None => format!("/applications/{}", encode(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_for_urls() {
        assert_eq!(encode("Office 365/Pro"), "Office%20365%2FPro");
        assert_eq!(encode("Zoë"), "Zo%C3%AB");
        assert_eq!(app_href("a b", None), "/applications/a%20b");
    }
}
