//! The web console over plain HTTP, without a browser, against a real `tally server`: the
//! session and sign-in cookies' attributes (and `Secure` over HTTPS), sign-out and revocation
//! ending a session, the CSRF token required on every POST, the auditor refused every change
//! whatever it sends, bounded fields, and every change and sign-in in the audit log under the
//! operator's name. On SQLite and on PostgreSQL.

mod common;
mod tls;
mod web;

use common::json::entry;
use common::{server_on, tally, tally_json, Backend, Running};
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE};
use web::{
    audit_log as audit, auditor_token, client, csrf_of, get, licenses, post, set_cookie, sign_in,
    value,
};

each_backend!(
    sessions_are_strict_http_only_cookies_that_sign_out_and_revocation_end,
    every_post_needs_the_csrf_token_and_the_auditor_changes_nothing,
    an_admin_edits_and_removes_a_license_through_the_forms,
    the_application_page_shows_demand_per_node_and_each_licenses_use,
    the_dashboard_figures_are_the_positions_totals,
);

/// The admin token's operator name.
fn admin_name(server: &Running) -> String {
    web::api(server, "/api/v1/whoami")["name"]
        .as_str()
        .unwrap()
        .to_string()
}

fn sessions_are_strict_http_only_cookies_that_sign_out_and_revocation_end(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    let (http, url) = (client(), server.url.clone());

    let away = http.get(format!("{url}/applications")).send().unwrap();
    assert_eq!(away.status(), 303, "no session: sent to sign in");
    assert_eq!(away.headers()["location"], "/sign-in");

    let form = http.get(format!("{url}/sign-in")).send().unwrap();
    let form_cookie = set_cookie(&form, "tally_signin");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(form_cookie.contains(attribute), "{form_cookie}");
    }
    assert!(!form_cookie.contains("Secure"), "plain HTTP: {form_cookie}");
    let csrf = csrf_of(&form.text().unwrap());

    // The sign-in form is refused without its own cookie, and a wrong token is said so.
    let forged = http
        .post(format!("{url}/sign-in"))
        .form(&[("token", server.token.as_str()), ("csrf", &csrf)])
        .send()
        .unwrap();
    assert_eq!(forged.status(), 403);
    let nonce = value(&form_cookie);
    let wrong = http
        .post(format!("{url}/sign-in"))
        .header(COOKIE, format!("tally_signin={nonce}"))
        .form(&[("token", "tally_0000"), ("csrf", &csrf)])
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().unwrap().contains("unknown or revoked token"));

    let session_cookie = sign_in(&http, &url, &server.token);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    assert!(!session_cookie.contains("Secure"), "{session_cookie}");
    let session = value(&session_cookie);
    let page = get(&http, &url, &session, "/");
    assert_eq!(page.status(), 200);
    assert!(page.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let policy = page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"));
    let page = page.text().unwrap();
    let admin = admin_name(&server);
    assert!(page.contains(&admin), "the page names who is signed in");

    // Sign-out needs the session's CSRF token too, then ends the session for good.
    let refused = post(&http, &url, &session, "/sign-out", &[]);
    assert_eq!(refused.status(), 403);
    let out = post(
        &http,
        &url,
        &session,
        "/sign-out",
        &[("csrf", &csrf_of(&page))],
    );
    assert_eq!(out.status(), 303);
    assert!(set_cookie(&out, "tally_session").contains("Max-Age=0"));
    assert_eq!(get(&http, &url, &session, "/").status(), 303, "signed out");
    let actions: Vec<(String, String)> = audit(&server)
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("web.sign_in".into(), admin.clone())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("web.sign_out".into(), admin)),
        "{actions:?}"
    );

    // Revoking the operator's token ends its sessions at once.
    let auditor = auditor_token(&server);
    let session = value(&sign_in(&http, &url, &auditor));
    assert_eq!(get(&http, &url, &session, "/licenses").status(), 200);
    let tokens = tally_json(&server, &server.token, &["tokens", "list"]);
    let id = entry(&tokens, "name", "ada-auditor")["id"].to_string();
    let revoked = tally(&server, &server.token, &["tokens", "revoke", &id]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert_eq!(get(&http, &url, &session, "/licenses").status(), 303);
}

/// A license for Office on HQ, as the form sends it, with `csrf`.
fn office_license(csrf: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", csrf.to_string()),
        ("application", "Office".into()),
        ("metric", "installations".into()),
        ("quantity", "1".into()),
        ("assignment_type", "organization".into()),
        ("assigned_to", "HQ".into()),
        ("unit_cost", "99.50".into()),
        ("currency", "EUR".into()),
    ]
}

fn send(server: &Running, session: &str, path: &str, form: &[(&str, String)]) -> (u16, String) {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = post(&client(), &server.url, session, path, &pairs);
    (answer.status().as_u16(), answer.text().unwrap())
}

fn every_post_needs_the_csrf_token_and_the_auditor_changes_nothing(backend: Backend) {
    let (_dir, server) = web::estate_server(&backend);
    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));
    let page = get(&http, &url, &admin, "/licenses").text().unwrap();
    let csrf = csrf_of(&page);
    assert!(page.contains("Add a license") && page.contains("/remove"));

    // Without the token, or with another, nothing is added.
    let (status, body) = send(&server, &admin, "/licenses", &office_license("")[1..]);
    assert_eq!(status, 403);
    assert!(body.contains("CSRF token is missing or wrong"), "{body}");
    let (status, _) = send(
        &server,
        &admin,
        "/licenses",
        &office_license(&"0".repeat(64)),
    );
    assert_eq!(status, 403);
    assert_eq!(licenses(&server).len(), 1);

    // An over-long field is the form's own error; a huge body is refused before parsing.
    let mut long = office_license(&csrf);
    long.push(("vendor", "v".repeat(300)));
    let (status, body) = send(&server, &admin, "/licenses", &long);
    assert_eq!(status, 422);
    assert!(body.contains("at most 255 characters"), "{body}");
    let mut huge = office_license(&csrf);
    huge.push(("notes", "n".repeat(70_000)));
    assert_eq!(send(&server, &admin, "/licenses", &huge).0, 413);
    assert_eq!(licenses(&server).len(), 1);

    let added = post(
        &http,
        &url,
        &admin,
        "/licenses",
        &office_license(&csrf)
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(added.status(), 303);
    assert_eq!(added.headers()["location"], "/applications/Office");
    let now = licenses(&server);
    assert_eq!(now.len(), 2);
    let admin_name = admin_name(&server);
    let entry = audit(&server)
        .into_iter()
        .find(|e| e["action"] == "license.add")
        .unwrap();
    assert_eq!(
        entry["actor"],
        admin_name.as_str(),
        "the change is the operator's"
    );

    // The auditor is shown no control that changes anything, and is refused each change.
    let auditor = value(&sign_in(&http, &url, &auditor_token(&server)));
    let page = get(&http, &url, &auditor, "/licenses").text().unwrap();
    assert!(
        !page.contains("Add a license") && !page.contains("/remove"),
        "{page}"
    );
    let id = now[0]["id"].to_string();
    let terms = get(&http, &url, &auditor, &format!("/licenses/{id}"))
        .text()
        .unwrap();
    assert!(!terms.contains("Save license") && terms.contains("license-terms"));
    assert_eq!(get(&http, &url, &auditor, "/licenses/new").status(), 403);
    let csrf = csrf_of(&page);
    let (status, body) = send(&server, &auditor, "/licenses", &office_license(&csrf));
    assert_eq!(status, 403);
    assert!(body.contains("read-only"), "{body}");
    let removal = [("csrf", csrf.clone())];
    assert_eq!(
        send(
            &server,
            &auditor,
            &format!("/licenses/{id}/remove"),
            &removal
        )
        .0,
        403
    );
    assert_eq!(
        send(
            &server,
            &auditor,
            &format!("/licenses/{id}"),
            &office_license(&csrf)
        )
        .0,
        403
    );
    assert_eq!(licenses(&server), now, "the auditor changed nothing");
}

fn an_admin_edits_and_removes_a_license_through_the_forms(backend: Backend) {
    let (_dir, server) = web::estate_server(&backend);
    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));
    let csrf = csrf_of(&get(&http, &url, &admin, "/licenses").text().unwrap());
    let id = licenses(&server)[0]["id"].to_string();

    // Edited: three installations instead of one, the rest of the terms as they were.
    let mut terms = office_license(&csrf);
    terms.retain(|(k, _)| *k != "quantity");
    terms.push(("quantity", "3".into()));
    let (status, body) = send(&server, &admin, &format!("/licenses/{id}"), &terms);
    assert_eq!(status, 303, "{body}");
    let now = licenses(&server);
    assert_eq!((now.len(), now[0]["quantity"].as_i64()), (1, Some(3)));
    // Office needs two (pc1, pc2; pc3 is retired): the position now shows one to spare.
    let position = web::api(&server, "/api/v1/compliance?app=Office");
    assert_eq!(
        (
            position[0]["owned"].as_i64(),
            position[0]["surplus"].as_i64()
        ),
        (Some(3), Some(1)),
        "{position}"
    );

    // Removed.
    let removal = [("csrf", csrf.clone())];
    let (status, body) = send(&server, &admin, &format!("/licenses/{id}/remove"), &removal);
    assert_eq!(status, 303, "{body}");
    assert_eq!(licenses(&server), Vec::<serde_json::Value>::new());

    // Both changes are the operator's, in the audit log.
    let me = admin_name(&server);
    let log = audit(&server);
    for action in ["license.edit", "license.delete"] {
        let entry = log.iter().find(|e| e["action"] == action);
        let entry = entry.unwrap_or_else(|| panic!("no {action} in {log:?}"));
        assert_eq!(entry["actor"], me.as_str());
    }
}

/// Office's page: demand per org node and each license's used and idle units, as the engine's
/// detail gives them (pc1 on Sales and pc2 on HQ installed, pc3 retired; one installation
/// licensed on Sales).
fn the_application_page_shows_demand_per_node_and_each_licenses_use(backend: Backend) {
    let (_dir, server) = web::estate_server(&backend);
    let (http, url) = (client(), server.url.clone());
    let session = value(&sign_in(&http, &url, &server.token));
    let page = get(&http, &url, &session, "/applications/Office")
        .text()
        .unwrap();
    let detail = web::api(&server, "/api/v1/compliance/detail?app=Office");
    let by_node: Vec<(String, i64, i64)> = (detail["by_node"].as_array().unwrap())
        .iter()
        .map(|n| {
            let name = n["org_node_name"].as_str().unwrap().to_string();
            (
                name,
                n["required"].as_i64().unwrap(),
                n["covered"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut sorted = by_node.clone();
    sorted.sort();
    let expected = [("HQ".to_string(), 1, 0), ("Sales".to_string(), 1, 1)];
    assert_eq!(sorted, expected, "{detail}");
    let rows: Vec<String> = by_node
        .iter()
        .map(|(name, required, covered)| format!("{name}{required}{covered}"))
        .collect();
    assert_eq!(web::rows_of(&page, "by-node"), rows);

    let licenses = web::rows_of(&page, "licenses");
    assert_eq!(licenses.len(), 1, "{licenses:?}");
    assert!(
        licenses[0].contains("yes10") && licenses[0].contains("99.50 EUR"),
        "valid, one used, none idle, its price: {licenses:?}"
    );
}

/// The figure of the dashboard tile whose label starts with `label`, and where it links.
fn tile(page: &str, label: &str) -> (String, String) {
    let at = page
        .find(&format!("<span class=\"label\">{label}"))
        .unwrap_or_else(|| panic!("no tile {label}"));
    let start = page[..at].rfind("<a ").unwrap();
    let tile = &page[start..at];
    let href = tile
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let figure = tile.split("<span class=\"figure\">").nth(1).unwrap();
    let figure = figure.split("</span>").next().unwrap();
    (figure.to_string(), href.replace("&amp;", "&"))
}

/// The dashboard's tiles against the API's positions: Office short one installation (pc2 on
/// HQ, no license there), Chat with five user licenses at 10 EUR and no user: over-licensed,
/// 50 EUR idle.
fn the_dashboard_figures_are_the_positions_totals(backend: Backend) {
    let (_dir, server) = web::estate_server(&backend);
    let chat = serde_json::json!({"application": "Chat", "metric": "users", "quantity": 5,
        "assignment_type": "organization", "unit_cost": "10", "currency": "EUR"});
    let added = web::api_post(&server, "/api/v1/licenses", &chat);
    assert_eq!(added.status(), 201);
    let (http, url) = (client(), server.url.clone());
    let session = value(&sign_in(&http, &url, &server.token));
    let page = get(&http, &url, &session, "/").text().unwrap();

    let positions = web::api(&server, "/api/v1/compliance");
    let status = |s: &str| {
        let all = positions.as_array().unwrap().iter();
        all.filter(|p| p["status"] == s).count().to_string()
    };
    let under = tile(&page, "applications under-licensed");
    assert_eq!(
        under,
        (
            status("under_licensed"),
            "/applications?status=under_licensed".into()
        )
    );
    assert_eq!(under.0, "1");
    let over = tile(&page, "applications over-licensed");
    assert_eq!(
        (over.0.as_str(), status("over_licensed")),
        ("1", "1".into())
    );
    let (idle, href) = tile(&page, "in idle licenses");
    assert!(idle.contains("50.00") && idle.contains("EUR"), "{idle}");
    assert!(
        href.starts_with("/applications?status=over_licensed"),
        "{href}"
    );
    let (shortfall, _) = tile(&page, "to buy to cover the shortfall");
    assert!(
        shortfall.contains("99.50") && shortfall.contains("EUR"),
        "{shortfall}"
    );
    // What reclaim would free: the reclaim list's idle installations of 90 days and their
    // value per currency, linking to that list (pc1 unused 200 days, pc2 never used).
    let reclaim = web::api(&server, "/api/v1/reclaim?days=90");
    let label = format!(
        "reclaim would free ({} installations unused 90 days)",
        reclaim["idle_total"]
    );
    let (freed, href) = tile(&page, &label);
    assert_eq!(reclaim["idle_total"], 2, "{reclaim}");
    assert_eq!(href, "/reclaim?days=90");
    for money in reclaim["idle_value"].as_array().unwrap() {
        let minor = money["minor"].as_i64().unwrap();
        let amount = format!("{}.{:02}", minor / 100, minor % 100);
        let currency = money["currency"].as_str().unwrap();
        assert!(
            freed.contains(&amount) && freed.contains(currency),
            "{amount} {currency} in {freed}"
        );
    }
    assert!(freed.contains("EUR"), "{freed}");
}

/// Over HTTPS both cookies are `Secure` as well.
#[test]
fn cookies_are_secure_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (server, cert) = tls::https_server(dir.path(), &Backend::Sqlite);
    let (url, token) = (server.url.clone(), server.token.clone());
    let ca = reqwest::Certificate::from_pem(cert.as_bytes()).unwrap();
    let http = reqwest::blocking::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http.get(format!("{url}/sign-in")).send().unwrap();
    let form_cookie = set_cookie(&form, "tally_signin");
    let session_cookie = sign_in(&http, &url, &token);
    drop(server);
    assert!(url.starts_with("https://"));
    assert!(form_cookie.ends_with("; Secure"), "{form_cookie}");
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.ends_with("; Secure"),
        "{session_cookie}"
    );
}

/// `tally up`, as a newcomer runs it, serves the console at its URL too.
#[test]
fn tally_up_serves_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let running = common::up_on(dir.path(), &Backend::Sqlite);
    let (http, url) = (client(), running.url.clone());
    assert_eq!(
        http.get(format!("{url}/")).send().unwrap().headers()["location"],
        "/sign-in"
    );
    let page = http.get(format!("{url}/sign-in")).send().unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains("Sign in to Tally"));
    let session = value(&sign_in(&http, &url, &running.token));
    let dashboard = get(&http, &url, &session, "/").text().unwrap();
    assert!(
        dashboard.contains("applications under-licensed"),
        "{dashboard}"
    );

    // Names are data, never markup: an application named like a script is shown as text.
    let hostile = "<script>alert(1)</script> & \"Co\"";
    let added = http
        .post(format!("{url}/api/v1/applications"))
        .bearer_auth(&running.token)
        .json(&serde_json::json!({"name": hostile, "publisher": "<b>Acme</b>", "metric": "installations"}))
        .send()
        .unwrap();
    assert_eq!(added.status(), 200);
    let list = get(&http, &url, &session, "/applications").text().unwrap();
    assert!(
        !list.contains("<script>alert") && !list.contains("<b>Acme"),
        "{list}"
    );
    assert!(
        list.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;"),
        "{list}"
    );
    assert!(
        list.contains("/applications/%3Cscript%3Ealert%281%29"),
        "named in the URL, encoded"
    );
    assert!(running.stop().success());
}
