//! Sites in the console, against real `tally server` processes on loopback, on SQLite and on
//! PostgreSQL: the admin invites a child site on `/admin` and is shown its join secret once; a
//! real child server joins with that secret and appears in the list with its link, last sync
//! and lag; the auditor sees no form and is refused a forged invitation; a form without the CSRF
//! token is refused; a bad code is the form's error; revoking the child's link is audited.

mod common;
mod web;

use common::{poll_until, server_on, server_with_flags, Backend};
use web::{audit_log, auditor_token, client, csrf_of, get, post, rows_of, sign_in, text_of, value};

each_backend!(a_child_site_is_invited_joins_and_is_revoked_from_the_console);

fn a_child_site_is_invited_joins_and_is_revoked_from_the_console(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let parent = server_on(dir.path(), &backend);
    let (http, url) = (client(), parent.url.clone());
    let admin = value(&sign_in(&http, &url, &parent.token));
    let page = get(&http, &url, &admin, "/admin").text().unwrap();
    let csrf = csrf_of(&page);
    assert!(page.contains("id=\"invite-form\""));
    let invite = |session: &str, csrf: &str, code: &str| {
        let form = [
            ("csrf", csrf),
            ("code", code),
            ("name", "Berlin"),
            ("hours", "24"),
        ];
        let answer = post(&http, &url, session, "/admin/sites/invite", &form);
        (answer.status().as_u16(), answer.text().unwrap())
    };

    // Refused: without the CSRF token, a malformed code, and the auditor whatever it sends.
    assert_eq!(invite(&admin, "", "P01").0, 403);
    let (status, body) = invite(&admin, &csrf, "berlin-1");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("code"), "{body}");
    let auditor = value(&sign_in(&http, &url, &auditor_token(&parent)));
    let seen = get(&http, &url, &auditor, "/admin").text().unwrap();
    assert!(!seen.contains("invite-form"), "no form for the auditor");
    assert_eq!(invite(&auditor, &csrf_of(&seen), "P01").0, 403);

    let (status, shown) = invite(&admin, &csrf, "P01");
    assert_eq!(status, 201, "{shown}");
    let secret = text_of(&shown, "secret");
    assert!(shown.contains("--site-code P01 --parent-url"), "{shown}");
    let rows = rows_of(&get(&http, &url, &admin, "/admin").text().unwrap(), "sites");
    assert!(
        rows.iter()
            .any(|r| r.contains("P01") && r.contains("invited")),
        "{rows:?}"
    );

    // A real child joins with the secret the page showed, and syncs.
    let child_dir = dir.path().join("p01");
    std::fs::create_dir_all(&child_dir).unwrap();
    let child_backend = backend.fresh_like();
    let flags = [
        "--site-code",
        "P01",
        "--site-name",
        "Berlin",
        "--parent-url",
        &url,
        "--parent-token",
        &secret,
        "--sync-interval-secs",
        "1",
    ];
    let _child = server_with_flags(&child_dir, &child_backend, &flags);
    let joined = poll_until(
        || rows_of(&get(&http, &url, &admin, "/admin").text().unwrap(), "sites"),
        |rows| {
            rows.iter()
                .any(|r| r.contains("P01") && r.contains("joined") && r.contains("UTC"))
        },
    );
    let row = joined.iter().find(|r| r.contains("P01")).unwrap();
    assert!(row.contains("Berlin"), "{row}");

    // Revoked from the console, audited under the admin's name.
    let (status, _) = {
        let answer = post(
            &http,
            &url,
            &admin,
            "/admin/sites/P01/revoke",
            &[("csrf", &csrf)],
        );
        (answer.status().as_u16(), ())
    };
    assert_eq!(status, 303);
    let rows = rows_of(&get(&http, &url, &admin, "/admin").text().unwrap(), "sites");
    assert!(
        rows.iter()
            .any(|r| r.contains("P01") && r.contains("revoked")),
        "{rows:?}"
    );
    let actions: Vec<String> = audit_log(&parent)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert!(actions.iter().any(|a| a == "site.invite"), "{actions:?}");
    assert!(
        actions.iter().any(|a| a.starts_with("site.revoke")),
        "{actions:?}"
    );
}
