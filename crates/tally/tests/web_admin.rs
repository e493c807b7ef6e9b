//! The console's administration, estate, import and report pages over plain HTTP against a
//! real `tally server`, on SQLite and on PostgreSQL: every change they offer works for an admin
//! with the session's CSRF token, is refused without it, and is refused to the auditor whatever
//! it sends, with nothing changed; uploads are bounded (size, count, names) and checked before
//! anything is written, a checked upload loads once and only for its operator; exports and
//! report downloads carry what the estate holds.

mod common;
mod web;

use common::json::entry;
use common::{tally_json, Backend, Running};
use reqwest::blocking::Client;
use web::{auditor_token, client, csrf_of, get, id_of, post, post_multipart, sign_in, value};

each_backend!(
    the_auditor_is_refused_every_change_and_admins_need_the_csrf_token,
    uploads_are_bounded_and_checked_before_anything_is_written,
);

/// The text in `page` after `marker`, up to the next quote: an attribute's value.
fn attribute_after(page: &str, marker: &str) -> String {
    let rest = page
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("no {marker} in {page}"));
    rest.split('"').next().unwrap().to_string()
}

/// The audit log's entries as (actor, action), sign-ins left out.
fn changes(server: &Running) -> Vec<(String, String)> {
    web::audit_log(server)
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(_, action)| action != "web.sign_in")
        .collect()
}

/// Every change the new pages offer: (path, fields besides the CSRF token).
fn changes_offered(server: &Running) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    let device = id_of(server, &["devices"], "host_name", "pc1");
    let user = id_of(server, &["users"], "account", "ann");
    let token = id_of(server, &["tokens", "list"], "name", "ada-auditor");
    vec![
        (
            "/admin/tokens".into(),
            vec![("name", "made-by-forgery"), ("role", "admin")],
        ),
        (format!("/admin/tokens/{token}/revoke"), vec![]),
        (
            "/admin/enrolment".into(),
            vec![("name", "forged-enrolment")],
        ),
        ("/admin/enrolment/1/revoke".into(), vec![]),
        ("/admin/agents/some-agent/revoke".into(), vec![]),
        ("/admin/tasks/snapshot_compliance/run".into(), vec![]),
        (
            "/admin/tasks/write_reports".into(),
            vec![("every_minutes", "5"), ("enabled", "false")],
        ),
        (
            format!("/devices/{device}/status"),
            vec![("status", "retired")],
        ),
        (
            format!("/users/{user}/service-account"),
            vec![("service_account", "yes")],
        ),
        ("/org/move".into(), vec![("node", "Sales"), ("parent", "")]),
        ("/import/load".into(), vec![("upload", "0")]),
        (
            "/rules".into(),
            vec![("name", "Editor"), ("file_name", "vim")],
        ),
        ("/rules/1/enabled".into(), vec![("enabled", "false")]),
        (
            "/rules/1".into(),
            vec![("name", "Forged"), ("file_name", "vim")],
        ),
        (
            format!("/devices/{device}/org-node"),
            vec![("org_node", "HQ")],
        ),
        (format!("/users/{user}/org-node"), vec![("org_node", "HQ")]),
        (
            "/org/rules".into(),
            vec![("org_node", "HQ"), ("host_name", "pc*")],
        ),
        ("/org/rules/1/remove".into(), vec![]),
    ]
}

fn send(
    http: &Client,
    server: &Running,
    session: &str,
    path: &str,
    csrf: Option<&str>,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    if let Some(csrf) = csrf {
        form.push(("csrf", csrf));
    }
    let answer = post(http, &server.url, session, path, &form);
    (answer.status().as_u16(), answer.text().unwrap())
}

fn the_auditor_is_refused_every_change_and_admins_need_the_csrf_token(backend: Backend) {
    let (_dir, server) = web::estate_server(&backend);
    let (http, url) = (client(), server.url.clone());
    let auditor = value(&sign_in(&http, &url, &auditor_token(&server)));
    let admin = value(&sign_in(&http, &url, &server.token));
    let before = changes(&server);
    let offered = changes_offered(&server);

    // The auditor, with its own valid CSRF token, is refused each change, and the pages offer none.
    let page = get(&http, &url, &auditor, "/admin/tokens").text().unwrap();
    assert!(
        !page.contains("token-form") && page.contains("Read-only"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    for (path, fields) in &offered {
        let (status, body) = send(&http, &server, &auditor, path, Some(&csrf), fields);
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("read-only"), "{path}: {body}");
    }
    let parts: [(&str, Option<&str>, &[u8]); 2] = [
        ("csrf", None, csrf.as_bytes()),
        ("files", Some("devices.csv"), b"host_name\npc9\n"),
    ];
    assert_eq!(
        post_multipart(&http, &url, &auditor, "/import", &parts).status(),
        403
    );

    // The admin without the token, or with the auditor's, is refused each as well.
    for (path, fields) in &offered {
        for token in [None, Some(csrf.as_str())] {
            let (status, body) = send(&http, &server, &admin, path, token, fields);
            assert_eq!(status, 403, "{path}: {body}");
            assert!(
                body.contains("CSRF token is missing or wrong"),
                "{path}: {body}"
            );
        }
    }
    assert_eq!(changes(&server), before, "nothing changed");

    // With the session's token each works, under the admin's name.
    let admin_csrf = csrf_of(&get(&http, &url, &admin, "/devices").text().unwrap());
    let (status, body) = send(
        &http,
        &server,
        &admin,
        &offered[0].0,
        Some(&admin_csrf),
        &offered[0].1,
    );
    assert_eq!(status, 201, "{body}");
    assert!(
        body.contains("id=\"secret\">tally_"),
        "the secret is shown: {body}"
    );
    for (path, fields) in &offered[6..10] {
        let (status, body) = send(&http, &server, &admin, path, Some(&admin_csrf), fields);
        assert_eq!(status, 303, "{path}: {body}");
    }
    // A metering rule added, then switched off.
    let added = post(
        &http,
        &url,
        &admin,
        "/rules",
        &[
            ("csrf", &admin_csrf),
            ("name", "Editor"),
            ("file_name", "vim"),
        ],
    );
    assert_eq!(added.status(), 303);
    let at = added.headers()["location"].to_str().unwrap().to_string();
    let rule = at.strip_prefix("/rules#rule-").unwrap();
    let off = format!("/rules/{rule}/enabled");
    let (status, _) = send(
        &http,
        &server,
        &admin,
        &off,
        Some(&admin_csrf),
        &[("enabled", "false")],
    );
    assert_eq!(status, 303);
    let rules = tally_json(&server, &server.token, &["rules", "list"]);
    let editor = entry(&rules, "name", "Editor");
    assert_eq!(editor["enabled"], false, "{rules}");
    let devices = tally_json(&server, &server.token, &["devices"]);
    let pc1 = entry(&devices, "host_name", "pc1");
    assert_eq!(pc1["status"], "retired");
    let actions: Vec<String> = changes(&server)[before.len()..]
        .iter()
        .map(|(_, a)| a.clone())
        .collect();
    assert_eq!(
        actions,
        [
            "token.create",
            "task.change",
            "device.status",
            "user.service_account",
            "org.move",
            "rule.create",
            "rule.update",
        ]
    );
    let tokens = tally_json(&server, &server.token, &["tokens", "list"]);
    assert!(
        tokens.to_string().contains("made-by-forgery"),
        "the admin's token exists"
    );

    // An enrolment token: its secret shown once, a bad validity refused, then revoked.
    let made = [("name", "lab"), ("days", "3"), ("max_uses", "5")];
    let (status, body) = send(
        &http,
        &server,
        &admin,
        "/admin/enrolment",
        Some(&admin_csrf),
        &made,
    );
    assert_eq!(status, 201, "{body}");
    assert!(
        body.contains("id=\"secret\">tally_") && body.contains("for site S01"),
        "{body}"
    );
    let never = [("name", "x"), ("days", "0")];
    assert_eq!(
        send(
            &http,
            &server,
            &admin,
            "/admin/enrolment",
            Some(&admin_csrf),
            &never
        )
        .0,
        400
    );
    let listed = get(&http, &url, &admin, "/admin/enrolment").text().unwrap();
    let revoke = attribute_after(&listed, "action=\"/admin/enrolment/");
    let revoke = format!("/admin/enrolment/{revoke}");
    assert_eq!(
        send(&http, &server, &admin, &revoke, Some(&admin_csrf), &[]).0,
        303
    );
    let last: Vec<String> = changes(&server)
        .iter()
        .rev()
        .take(2)
        .map(|(_, a)| a.clone())
        .collect();
    assert_eq!(last, ["enrollment_token.revoke", "enrollment_token.create"]);

    // The audit log page filters by actor and action.
    let log = get(&http, &url, &auditor, "/admin/audit?action=device.status")
        .text()
        .unwrap();
    assert!(
        log.contains("<td>device.status</td>") && !log.contains("<td>token.create</td>"),
        "{log}"
    );
}

fn uploads_are_bounded_and_checked_before_anything_is_written(backend: Backend) {
    let (_dir, server) = web::estate_server(&backend);
    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));
    let csrf = csrf_of(&get(&http, &url, &admin, "/import").text().unwrap());
    let upload = |files: &[(&str, &[u8])]| {
        let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![("csrf", None, csrf.as_bytes())];
        parts.extend(
            files
                .iter()
                .map(|(name, bytes)| ("files", Some(*name), *bytes)),
        );
        let answer = post_multipart(&http, &url, &admin, "/import", &parts);
        (answer.status().as_u16(), answer.text().unwrap())
    };
    let before = changes(&server);

    // Too big, too many, or a name too long: refused before anything is read.
    let huge = vec![b'x'; 17 * 1024 * 1024];
    let parts: [(&str, Option<&str>, &[u8]); 2] = [
        ("csrf", None, csrf.as_bytes()),
        ("files", Some("devices.csv"), &huge),
    ];
    assert_eq!(
        web::raw_multipart_status(&url, &admin, "/import", &parts),
        413
    );
    let many: Vec<(&str, &[u8])> = (0..17)
        .map(|_| ("devices.csv", b"host_name\n".as_slice()))
        .collect();
    let (status, body) = upload(&many);
    assert_eq!(
        (status, body.contains("at most 16 files")),
        (400, true),
        "{body}"
    );
    let long = format!("{}.csv", "d".repeat(300));
    assert_eq!(upload(&[(&long, b"host_name\n")]).0, 400);

    // Files Tally cannot read are each named with what is wrong, and nothing is written.
    let (status, body) = upload(&[
        ("stuff.csv", b"a\n1\n"),
        ("applications.json", b"{\"name\": 1}"),
        ("devices.csv", b"host_name,status\npc8,active\npc9,lost\n"),
    ]);
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("stuff.csv: name the file after what it holds"),
        "{body}"
    );
    assert!(body.contains("not a JSON array of objects"), "{body}");
    assert!(
        body.contains("<td>devices.csv</td><td class=\"num\">3</td><td>status</td>"),
        "{body}"
    );
    assert_eq!(changes(&server), before);

    // A clean check writes nothing; its load does, once, for its operator only.
    let (status, body) = upload(&[("devices.csv", b"host_name,org_node\npc8,HQ\n")]);
    assert_eq!(status, 200, "{body}");
    assert!(!web::host_names(&server).contains(&"pc8".to_string()));
    let id = attribute_after(&body, "name=\"upload\" value=\"");
    let auditor = value(&sign_in(&http, &url, &auditor_token(&server)));
    let auditor_csrf = csrf_of(&get(&http, &url, &auditor, "/import").text().unwrap());
    let load = |session: &str, csrf: &str, upload: &str| {
        let answer = post(
            &http,
            &url,
            session,
            "/import/load",
            &[("csrf", csrf), ("upload", upload)],
        );
        (answer.status().as_u16(), answer.text().unwrap())
    };
    assert_eq!(load(&auditor, &auditor_csrf, &id).0, 403);
    assert_eq!(load(&admin, &csrf, "another").0, 404);
    let (status, body) = load(&admin, &csrf, &id);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Imported 1 device."), "{body}");
    assert!(web::host_names(&server).contains(&"pc8".to_string()));
    assert_eq!(load(&admin, &csrf, &id).0, 404, "loaded once");
    let imported = changes(&server);
    assert_eq!(imported.last().unwrap().1, "import");

    // Lists page on the server: 64 devices are 50, then the 14 after the last shown.
    let many: String = (1..=60).map(|n| format!("h{n:02},HQ\n")).collect();
    let (status, body) = upload(&[(
        "devices.csv",
        format!("host_name,org_node\n{many}").as_bytes(),
    )]);
    assert_eq!(status, 200, "{body}");
    let id = attribute_after(&body, "name=\"upload\" value=\"");
    assert_eq!(load(&admin, &csrf, &id).0, 200);
    let rows = |page: &str| page.matches("<tr><td><a href=\"/devices/").count();
    let first = get(&http, &url, &admin, "/devices").text().unwrap();
    assert_eq!(rows(&first), 50);
    let next = attribute_after(&first, "rel=\"next\" href=\"");
    assert!(next.starts_with("/devices?after="), "{next}");
    let second = get(&http, &url, &admin, &next).text().unwrap();
    assert_eq!(rows(&second), 14);
    assert!(!second.contains("rel=\"next\""), "the last page");
    let filtered = get(&http, &url, &admin, "/devices?q=h5").text().unwrap();
    assert_eq!(rows(&filtered), 10, "h50 to h59");

    // The export carries the estate, spreadsheet-safe; reports download in the format asked.
    let export = get(&http, &url, &admin, "/export/devices.csv");
    assert_eq!(export.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = export.text().unwrap();
    assert!(
        csv.starts_with("host_name,") && csv.contains("\npc8,"),
        "{csv}"
    );
    assert_eq!(
        get(&http, &url, &admin, "/export/secrets.csv").status(),
        404
    );
    let report = get(
        &http,
        &url,
        &admin,
        "/reports/reclaim/download?days=90&format=csv",
    );
    assert_eq!(report.status(), 200);
    assert!(report.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("reclaim.csv"));
    assert!(report.text().unwrap().contains("pc1"));
    assert_eq!(
        get(&http, &url, &admin, "/reports/reclaim/download?format=xls").status(),
        400
    );
    assert_eq!(get(&http, &url, &admin, "/reports/nothing").status(), 404);
    // The scheduled reports, written now by running their task, listed and downloaded; no
    // path outside them is reachable.
    let run = post(
        &http,
        &url,
        &admin,
        "/admin/tasks/write_reports/run",
        &[("csrf", &csrf)],
    );
    assert_eq!(run.status(), 303);
    let catalogue = get(&http, &url, &admin, "/reports").text().unwrap();
    let day = chrono::Utc::now().date_naive();
    let written = format!("/reports/written/{day}/reclaim.csv");
    assert!(catalogue.contains(&written), "{catalogue}");
    let file = get(&http, &url, &admin, &written);
    assert_eq!(file.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(file.text().unwrap().contains("pc1"));
    for path in ["%2E%2E%2Ftally.db", "..%2F..%2Ftally.db", "tally.db"] {
        let outside = get(
            &http,
            &url,
            &admin,
            &format!("/reports/written/{day}/{path}"),
        );
        assert_eq!(outside.status(), 404, "{path}");
    }
    let refused = get(&http, &url, &admin, "/reports/reclaim?days=0&run=1")
        .text()
        .unwrap();
    assert!(refused.contains("report-refused"), "{refused}");
}
