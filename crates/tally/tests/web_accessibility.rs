//! Basic accessibility of the console's main pages, checked in a real headless Chromium against
//! a real `tally server` (SQLite), by the rules axe-core checks first, written here as one
//! script over the rendered page: the document has a language and a title; there is one `h1`;
//! every form control has an accessible name (a `label for`, a wrapping `label`, `aria-label`
//! or `title`); every image and chart has a text alternative; every link and button has text;
//! ids are unique; and text is dark enough on its background (WCAG AA, 4.5:1, computed from the
//! styles the browser resolved). Each page's problems are listed by rule and element.
//!
//! The same pages are then checked by axe-core itself (from the npm registry, the engine behind
//! Lighthouse's accessibility audit) against WCAG 2.1 A and AA. `.ci/run` installs it with
//! `npm install --prefix target/axe-core axe-core@4.10.3`; elsewhere the axe test says that
//! command and passes without it, except under `CI=true`, where a missing axe-core fails.

mod common;
mod web;

use common::{Backend, Running};
use web::browser::Browser;

/// The checks, run in the page; the problems found, one string each.
const CHECK: &str = r#"
const problems = [];
const name = (e) => (e.getAttribute('aria-label') || e.getAttribute('title') ||
    (e.id && document.querySelector(`label[for="${CSS.escape(e.id)}"]`)?.innerText) ||
    e.closest('label')?.innerText || '').trim();
const where = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
    (e.getAttribute('name') ? `[name=${e.getAttribute('name')}]` : '');
if (!document.documentElement.lang) problems.push('html: no lang');
if (!document.title.trim()) problems.push('document: no title');
const h1 = document.querySelectorAll('h1').length;
if (h1 !== 1) problems.push(`h1: ${h1} on the page, not 1`);
for (const e of document.querySelectorAll('input, select, textarea')) {
    if (e.type === 'hidden' || e.type === 'submit') continue;
    if (!name(e)) problems.push(`label: ${where(e)} has no accessible name`);
}
for (const e of document.querySelectorAll('img')) {
    if (!e.hasAttribute('alt')) problems.push(`alt: ${where(e)} has no alt`);
}
for (const e of document.querySelectorAll('svg')) {
    const labelled = e.getAttribute('role') === 'img' && (e.getAttribute('aria-label') ||
        e.querySelector('title'));
    if (!labelled && !e.closest('[aria-hidden=true]') && !e.closest('a[aria-label]'))
        problems.push(`svg: ${where(e)} in ${where(e.parentElement)} has no text alternative`);
}
for (const e of document.querySelectorAll('a[href], button')) {
    if (!(e.innerText.trim() || e.getAttribute('aria-label') || e.getAttribute('title') ||
          e.querySelector('svg title')))
        problems.push(`name: ${where(e)} has no text`);
}
const ids = {};
for (const e of document.querySelectorAll('[id]')) ids[e.id] = (ids[e.id] || 0) + 1;
for (const [id, n] of Object.entries(ids)) if (n > 1) problems.push(`id: #${id} ${n} times`);
const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
};
const background = (e) => {
    for (; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
};
const seen = new Set();
for (const e of document.body.querySelectorAll('*')) {
    const text = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!text || e.closest('svg') || !e.getClientRects().length) continue;
    const style = getComputedStyle(e);
    const [l1, l2] = [lum(rgb(style.color).slice(0, 3)), lum(background(e))];
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const large = parseFloat(style.fontSize) >= 24 ||
        (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
    const key = `${style.color} on ${background(e)}`;
    if (ratio < (large ? 3 : 4.5) && !seen.has(key)) {
        seen.add(key);
        problems.push(`contrast: ${where(e)} ${key} is ${ratio.toFixed(2)}:1`);
    }
}
return problems;
"#;

/// The console's main pages, as the admin sees them.
const PAGES: &[&str] = &[
    "/",
    "/applications",
    // Narrowed to a site (this one, S01 by default): the banner and the Site list shown.
    "/applications?site=S01",
    "/applications/Office",
    "/applications/Office/concurrency",
    "/licenses",
    "/licenses/new",
    "/reclaim",
    "/reclaim?site=S01",
    "/devices",
    "/devices/1",
    "/users",
    "/users/1",
    "/org",
    "/rules",
    "/programs",
    "/import",
    "/reports",
    "/admin",
    "/admin/tokens",
    "/admin/enrolment",
    "/admin/agents",
    "/admin/tasks",
    "/admin/metering",
    "/admin/audit",
];

#[test]
fn the_main_pages_pass_the_basic_accessibility_rules() {
    if !web::browser::available() {
        return;
    }
    let (_dir, server, runtime) = estate();
    let found = runtime.block_on(async {
        let b = Browser::start().await;
        b.open(&server.url, "/sign-in").await;
        let mut found = check(&b, "/sign-in").await;
        b.sign_in(&server.url, &server.token).await;
        for page in PAGES {
            b.open(&server.url, page).await;
            b.text("h1").await;
            if page.contains("site=") {
                let narrowed = b.exists("#site-scope").await && b.exists("select#site").await;
                assert!(narrowed, "{page}: no banner or Site list");
            }
            found.extend(check(&b, page).await);
        }
        // The checks find what they look for: a bare field, pale text and an unnamed link
        // added to the last page are each reported.
        // (The page's policy refuses inline style attributes; the script sets the colour.)
        let break_it = "const at = document.querySelector('main') || document.body; \
            at.insertAdjacentHTML('beforeend', '<input id=bare><span id=pale>pale</span><a href=/x></a>'); \
            const pale = document.getElementById('pale'); \
            pale.style.color = '#ccc'; pale.style.background = '#fff';";
        b.c().execute(break_it, vec![]).await.unwrap();
        let broken = check(&b, "broken").await.join("\n");
        for rule in ["label: input#bare", "contrast: span", "name: a has no text"] {
            assert!(broken.contains(rule), "{rule} not found in:\n{broken}");
        }
        found
    });
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Where `.ci/run` puts axe-core (or `AXE_CORE_JS`), relative to the workspace.
fn axe_source() -> Option<String> {
    let path = std::env::var("AXE_CORE_JS").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/axe-core/node_modules/axe-core/axe.min.js"
        )
        .to_string()
    });
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("CI=true and no axe-core at {path}: run npm install --prefix target/axe-core axe-core@4.10.3")
        }
        Err(_) => {
            eprintln!(
                "skipped: axe-core is not at {path}; run \
                 `npm install --prefix target/axe-core axe-core@4.10.3` to check the pages with it"
            );
            None
        }
    }
}

/// axe-core's WCAG 2.1 A/AA rules over the page open in `b`; one line per violation and element.
const AXE_RUN: &str = r#"
return axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
  .then((r) => r.violations.flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(' ')}: ${v.help}`)));
"#;

#[test]
fn the_main_pages_pass_axe_core_wcag_a_and_aa() {
    if !web::browser::available() {
        return;
    }
    let Some(axe) = axe_source() else { return };
    let (_dir, server, runtime) = estate();
    let found = runtime.block_on(async {
        let b = Browser::start().await;
        let mut found = Vec::new();
        b.sign_in(&server.url, &server.token).await;
        for page in PAGES {
            b.open(&server.url, page).await;
            b.text("h1").await;
            found.extend(axe_check(&b, &axe, page).await);
        }
        // axe finds what it looks for: an unlabelled field added to the last page is reported.
        let break_it = "document.body.insertAdjacentHTML('beforeend', '<input id=bare>');";
        b.c().execute(break_it, vec![]).await.unwrap();
        let broken = axe_check(&b, &axe, "broken").await.join("\n");
        assert!(
            broken.contains("label (critical): #bare"),
            "axe missed the bare field:\n{broken}"
        );
        found
    });
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// axe's violations on the page open in `b`, each prefixed with its URL.
async fn axe_check(b: &Browser, axe: &str, page: &str) -> Vec<String> {
    b.c().execute(axe, vec![]).await.unwrap();
    let said = b.c().execute(AXE_RUN, vec![]).await.unwrap();
    said.as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{page}: {}", p.as_str().unwrap()))
        .collect()
}

/// A real server on SQLite holding the console tests' estate, and a runtime for the browser.
fn estate() -> (tempfile::TempDir, Running, tokio::runtime::Runtime) {
    let (dir, server) = web::estate_server(&Backend::Sqlite);
    (dir, server, tokio::runtime::Runtime::new().unwrap())
}

/// The problems on the page open in `b`, each prefixed with its URL.
async fn check(b: &Browser, page: &str) -> Vec<String> {
    let said = b.c().execute(CHECK, vec![]).await.unwrap();
    let problems = said.as_array().unwrap();
    problems
        .iter()
        .map(|p| format!("{page}: {}", p.as_str().unwrap()))
        .collect()
}
