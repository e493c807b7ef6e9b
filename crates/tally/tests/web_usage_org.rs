//! The console's concurrency chart, metering-rule editing, org-tree placement and placement
//! rules, and the paged admin lists, over plain HTTP against a real `tally server` on SQLite
//! and on PostgreSQL: figures as the service computes them, changes audited under the
//! operator's name, the auditor shown no control and refused a forged POST with nothing
//! changed, and every list longer than a page showing page 2 with the right rows.

mod common;
mod web;

use chrono::{Duration, Utc};
use common::{server_on, tally_json, Backend, Running};
use web::{
    audit_log, auditor_token, client, csrf_of, get, id_of, pages_hold, post, rows_of, sign_in,
    text_of, value,
};

each_backend!(
    the_concurrency_chart_counts_as_the_engine_does,
    a_metering_rule_is_edited_with_the_services_checks_on_the_form,
    devices_and_users_are_placed_and_placement_rules_kept_from_the_console,
    every_admin_list_pages_on_the_server,
);

/// The requirement of `app`'s position, as the API computes it.
fn required(server: &Running, app: &str) -> i64 {
    web::api(server, &format!("/api/v1/compliance?app={app}"))[0]["required"]
        .as_i64()
        .unwrap()
}

fn the_concurrency_chart_counts_as_the_engine_does(backend: Backend) {
    let (dir, server) = web::estate_server(&backend);
    let (d3, d10) = web::import_viewer(dir.path(), &backend);
    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));

    // The application's page links to its chart, which has a URL of its own.
    let app = get(&http, &url, &admin, "/applications/Viewer")
        .text()
        .unwrap();
    assert!(
        app.contains("href=\"/applications/Viewer/concurrency\""),
        "{app}"
    );
    let page = get(&http, &url, &admin, "/applications/Viewer/concurrency");
    assert_eq!(page.status(), 200);
    let page = page.text().unwrap();
    // Three people in the 10:00 hour; the service account left out: the engine's peak.
    assert_eq!(text_of(&page, "metering-peak"), "3");
    assert_eq!(required(&server, "Viewer"), 3, "the position's requirement");
    let table = text_of(&page, "concurrency");
    assert!(table.contains(&format!("{d3}3{d3} 10:00 UTC")), "{table}");
    assert!(table.contains(&format!("{d10}1{d10} 09:00 UTC")), "{table}");
    let idle = (Utc::now().date_naive() - Duration::days(1)).to_string();
    assert!(table.contains(&format!("{idle}0—")), "{table}");
    assert_eq!(table.matches(":00 UTC").count(), 2, "31 days, two with use");
    // The chart is the reports' SVG, with a bar per day.
    let chart = text_of(&page, "concurrency-chart");
    assert!(chart.contains("Peak concurrent users per day"), "{chart}");
    assert!(
        page.contains(&format!("<title>{d3}: 3 users</title>")),
        "{page}"
    );

    // Per month, and as of a day before any use.
    let months = get(
        &http,
        &url,
        &admin,
        "/applications/Viewer/concurrency?per=month",
    )
    .text()
    .unwrap();
    assert!(text_of(&months, "concurrency").contains(&format!("{}3", &d3[..7])));
    let before = (Utc::now().date_naive() - Duration::days(11)).to_string();
    let early = get(
        &http,
        &url,
        &admin,
        &format!("/applications/Viewer/concurrency?as_of={before}"),
    )
    .text()
    .unwrap();
    assert_eq!(text_of(&early, "metering-peak"), "0");

    // Measured in users, Office's chart counts its one user but says it decides nothing.
    let office = get(
        &http,
        &url,
        &admin,
        "/applications/office/concurrency?per=month",
    )
    .text()
    .unwrap();
    assert!(office.contains("does not decide its position"), "{office}");

    // Bad input: a clear 400 or 404.
    for (path, status) in [
        ("/applications/Viewer/concurrency?per=week", 400),
        ("/applications/Viewer/concurrency?as_of=yesterday", 400),
        ("/applications/Nothing/concurrency", 404),
    ] {
        assert_eq!(get(&http, &url, &admin, path).status(), status, "{path}");
    }
    let long = format!("/applications/{}/concurrency", "x".repeat(300));
    assert_eq!(get(&http, &url, &admin, &long).status(), 404);

    // The auditor reads it too.
    let auditor = value(&sign_in(&http, &url, &auditor_token(&server)));
    let seen = get(&http, &url, &auditor, "/applications/Viewer/concurrency");
    assert_eq!(seen.status(), 200);
}

/// Adds a metering rule through the console; its id.
fn add_rule(server: &Running, session: &str, csrf: &str, name: &str, file: &str) -> String {
    let fields = [("csrf", csrf), ("name", name), ("file_name", file)];
    let added = post(&client(), &server.url, session, "/rules", &fields);
    assert_eq!(added.status(), 303);
    let at = added.headers()["location"].to_str().unwrap().to_string();
    at.strip_prefix("/rules#rule-").unwrap().to_string()
}

/// The stored rule called `name`, as the CLI lists it.
fn rule_named(server: &Running, name: &str) -> Option<serde_json::Value> {
    let rules = tally_json(server, &server.token, &["rules", "list"]);
    rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
}

fn a_metering_rule_is_edited_with_the_services_checks_on_the_form(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));
    let csrf = csrf_of(&get(&http, &url, &admin, "/rules").text().unwrap());
    let id = add_rule(&server, &admin, &csrf, "Editor", "vim");
    add_rule(&server, &admin, &csrf, "Office", "soffice.bin");
    let path = format!("/rules/{id}");
    // Adding shows its refusals on the form too, with what was typed kept.
    let add = |name: &str, file: &str| {
        let fields = [("csrf", csrf.as_str()), ("name", name), ("file_name", file)];
        let answer = post(&http, &url, &admin, "/rules", &fields);
        (answer.status().as_u16(), answer.text().unwrap())
    };
    let (status, page) = add("Tools", "bin/tool");
    assert_eq!(status, 422);
    assert!(
        text_of(&page, "file_name-error").contains("path separators"),
        "{page}"
    );
    assert!(page.contains("value=\"bin/tool\""), "{page}");
    let (status, page) = add("editor", "nano");
    assert_eq!(status, 422);
    assert!(
        text_of(&page, "name-error").contains("already has the name"),
        "{page}"
    );
    assert!(rule_named(&server, "Tools").is_none() && rule_named(&server, "editor").is_none());

    // The list links each rule to its page, where the admin gets the form, filled in.
    let list = get(&http, &url, &admin, "/rules").text().unwrap();
    assert!(list.contains(&format!("href=\"{path}\"")), "{list}");
    let page = get(&http, &url, &admin, &path).text().unwrap();
    assert!(page.contains("id=\"rule-edit\""), "{page}");
    assert!(
        page.contains("name=\"file_name\" type=\"text\" value=\"vim\""),
        "{page}"
    );

    // Each refusal is the form's own, beside its field, with what was typed kept.
    let edit = |fields: &[(&str, &str)]| {
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("name", "Editor"),
            ("file_name", "vim"),
            ("language", "65535"),
        ];
        for (k, v) in fields {
            form.retain(|(f, _)| f != k);
            form.push((k, v));
        }
        let answer = post(&http, &url, &admin, &path, &form);
        (answer.status().as_u16(), answer.text().unwrap())
    };
    let (status, page) = edit(&[("file_name", "v*m")]);
    assert_eq!(status, 422, "{page}");
    assert!(
        text_of(&page, "file_name-error").contains("may not contain wildcards"),
        "{page}"
    );
    assert!(page.contains("value=\"v*m\""), "what was typed is kept");
    let (status, page) = edit(&[("name", "office")]);
    assert_eq!(status, 422);
    assert!(
        text_of(&page, "name-error").contains("already has the name"),
        "{page}"
    );
    let (status, page) = edit(&[("language", "any")]);
    assert_eq!(status, 422);
    assert!(
        text_of(&page, "language-error").contains("0 to 65535"),
        "{page}"
    );
    let (status, page) = edit(&[("language", "70000")]);
    assert_eq!(status, 422);
    assert!(text_of(&page, "language-error").contains("65535"), "{page}");
    let long = "x".repeat(256);
    let (status, page) = edit(&[("product_name", &long)]);
    assert_eq!(status, 422);
    assert!(
        text_of(&page, "product_name-error").contains("at most 255"),
        "{page}"
    );
    let before = rule_named(&server, "Editor").unwrap();
    assert_eq!(before["file_name"], "vim", "nothing changed");

    // The auditor reads the rule, gets no form, and is refused a forged POST.
    let auditor = value(&sign_in(&http, &url, &auditor_token(&server)));
    let seen = get(&http, &url, &auditor, &path).text().unwrap();
    assert!(
        !seen.contains("rule-edit") && seen.contains("Read-only"),
        "{seen}"
    );
    assert!(text_of(&seen, "rule-terms").contains("vim"), "{seen}");
    let forged = [
        ("csrf", csrf_of(&seen)),
        ("name", "Forged".into()),
        ("file_name", "vim".into()),
    ];
    let forged: Vec<(&str, &str)> = forged.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(post(&http, &url, &auditor, &path, &forged).status(), 403);
    // The admin without the CSRF token is refused as well.
    let bare = [("name", "Forged"), ("file_name", "vim")];
    assert_eq!(post(&http, &url, &admin, &path, &bare).status(), 403);
    assert!(rule_named(&server, "Forged").is_none());
    let updates =
        |log: &[serde_json::Value]| log.iter().filter(|e| e["action"] == "rule.update").count();
    assert_eq!(updates(&audit_log(&server)), 0, "no change logged");

    // Saved: every field, the rule stays on, and the change is logged under the admin's name.
    let (status, page) = edit(&[
        ("name", "Vim editor"),
        ("file_version", "9.*"),
        ("product_name", "Vim"),
        ("comment", "the team's editor"),
        ("apply_to_child_sites", "on"),
    ]);
    assert_eq!(status, 303, "{page}");
    let saved = rule_named(&server, "Vim editor").expect("renamed");
    assert_eq!(saved["id"].to_string(), id);
    assert_eq!(
        (
            saved["file_version"].as_str(),
            saved["product_name"].as_str()
        ),
        (Some("9.*"), Some("Vim"))
    );
    assert_eq!(
        (
            saved["apply_to_child_sites"].as_bool(),
            saved["enabled"].as_bool()
        ),
        (Some(true), Some(true))
    );
    let log = audit_log(&server);
    assert_eq!(updates(&log), 1);
    let entry = log.iter().find(|e| e["action"] == "rule.update").unwrap();
    assert_eq!(entry["target"], format!("rule:{id}"));
    assert_ne!(entry["actor"], "ada-auditor");
    assert_eq!(get(&http, &url, &admin, "/rules/999999").status(), 404);
}

/// The audit log's actions, newest first, sign-ins left out.
fn actions(server: &Running) -> Vec<String> {
    audit_log(server)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .filter(|a| a != "web.sign_in")
        .collect()
}

fn devices_and_users_are_placed_and_placement_rules_kept_from_the_console(backend: Backend) {
    let (_dir, server) = web::estate_server(&backend);
    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));
    let auditor = value(&sign_in(&http, &url, &auditor_token(&server)));
    let pc1 = format!(
        "/devices/{}",
        id_of(&server, &["devices"], "host_name", "pc1")
    );
    let ann = format!("/users/{}", id_of(&server, &["users"], "account", "ann"));
    let page = get(&http, &url, &admin, &pc1).text().unwrap();
    let csrf = csrf_of(&page);
    assert!(
        page.contains("<option value=\"Sales\" selected>"),
        "pc1 is on Sales: {page}"
    );
    let before = actions(&server);

    // The auditor sees no control and is refused each change, as is the admin without the token.
    let seen = get(&http, &url, &auditor, &pc1).text().unwrap();
    assert!(!seen.contains("place-form"), "{seen}");
    let seen = get(&http, &url, &auditor, "/org").text().unwrap();
    assert!(
        !seen.contains("org-rule-form") && !seen.contains(">Remove<"),
        "{seen}"
    );
    let auditor_csrf = csrf_of(&seen);
    let changes: [(String, Vec<(&str, &str)>); 4] = [
        (format!("{pc1}/org-node"), vec![("org_node", "HQ")]),
        (format!("{ann}/org-node"), vec![("org_node", "HQ")]),
        (
            "/org/rules".into(),
            vec![("org_node", "HQ"), ("host_name", "pc*")],
        ),
        ("/org/rules/1/remove".into(), vec![]),
    ];
    for (path, fields) in &changes {
        for (session, token) in [(&auditor, Some(auditor_csrf.as_str())), (&admin, None)] {
            let mut form = fields.clone();
            form.extend(token.map(|t| ("csrf", t)));
            assert_eq!(
                post(&http, &url, session, path, &form).status(),
                403,
                "{path}"
            );
        }
    }
    assert_eq!(actions(&server), before, "nothing changed");

    // pc1 moved to HQ by picking it; an unknown node refused with nothing changed; ann placed
    // on Sales, then taken off (the placement rules decide again).
    let place = |path: &str, node: &str| {
        let form = [("csrf", csrf.as_str()), ("org_node", node)];
        post(&http, &url, &admin, &format!("{path}/org-node"), &form)
    };
    assert_eq!(place(&pc1, "HQ").status(), 303);
    let page = get(&http, &url, &admin, &pc1).text().unwrap();
    assert!(page.contains("<option value=\"HQ\" selected>"), "{page}");
    let refused = place(&pc1, "Nowhere");
    assert_eq!(refused.status(), 400);
    assert!(refused.text().unwrap().contains("no org node named"));
    assert_eq!(place(&ann, "Sales").status(), 303);
    let page = get(&http, &url, &admin, &ann).text().unwrap();
    assert!(text_of(&page, "user").contains("Sales"), "{page}");
    assert_eq!(place(&ann, "").status(), 303);
    let page = get(&http, &url, &admin, &ann).text().unwrap();
    assert!(page.contains("<option value=\"\" selected>"), "{page}");
    assert_eq!(place("/devices/999999", "HQ").status(), 404);

    // Placement rules: refusals on the form's fields, one added, then removed.
    let rule = |fields: &[(&str, &str)]| {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        post(&http, &url, &admin, "/org/rules", &form)
    };
    let both = rule(&[
        ("org_node", "Sales"),
        ("host_name", "lab-*"),
        ("account", "x*"),
    ]);
    assert_eq!(both.status(), 422);
    let page = both.text().unwrap();
    assert!(
        text_of(&page, "rule-account-error").contains("not both"),
        "{page}"
    );
    assert!(page.contains("value=\"lab-*\""), "what was typed is kept");
    let neither = rule(&[("org_node", "Sales")]).text().unwrap();
    assert!(
        text_of(&neither, "rule-site-error").contains("give a site"),
        "{neither}"
    );
    let no_node = rule(&[("host_name", "lab-*")]).text().unwrap();
    assert!(text_of(&no_node, "rule-org_node-error").contains("choose a node"));
    let added = rule(&[("org_node", "Sales"), ("host_name", "lab-*")]);
    assert_eq!(added.status(), 303);
    let at = added.headers()["location"].to_str().unwrap().to_string();
    let id = at.strip_prefix("/org#org-rule-").unwrap().to_string();
    let page = get(&http, &url, &admin, "/org").text().unwrap();
    let row = text_of(&page, &format!("org-rule-{id}"));
    assert!(row.starts_with("1Sales—lab-*—"), "{row}");
    let rules = tally_json(&server, &server.token, &["org", "rules"]);
    assert_eq!(rules.as_array().unwrap().len(), 1, "{rules}");
    let removed = post(
        &http,
        &url,
        &admin,
        &format!("/org/rules/{id}/remove"),
        &[("csrf", &csrf)],
    );
    assert_eq!(removed.status(), 303);
    let gone = post(
        &http,
        &url,
        &admin,
        &format!("/org/rules/{id}/remove"),
        &[("csrf", &csrf)],
    );
    assert_eq!(gone.status(), 404);
    let rules = tally_json(&server, &server.token, &["org", "rules"]);
    assert!(rules.as_array().unwrap().is_empty(), "{rules}");
    assert_eq!(
        actions(&server)[before.len()..],
        [
            "device.place",
            "user.place",
            "user.place",
            "org_rule.add",
            "org_rule.delete"
        ]
    );
}

/// POSTs `body` to the API's `path` as the admin; the answer, which must succeed.
fn api_post(server: &Running, path: &str, body: serde_json::Value) -> serde_json::Value {
    let answer = web::api_post(server, &format!("/api/v1/{path}"), &body);
    assert!(answer.status().is_success(), "{path}: {}", answer.status());
    answer.json().unwrap()
}

fn every_admin_list_pages_on_the_server(backend: Backend) {
    let (dir, server) = web::estate_server(&backend);
    let numbered = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
    };
    let tokens = numbered("tok", 55);
    for name in &tokens {
        api_post(
            &server,
            "tokens",
            serde_json::json!({"name": name, "role": "auditor"}),
        );
    }
    let enrolment = numbered("enrol", 53);
    let mut secret = String::new();
    for name in &enrolment {
        let made = api_post(
            &server,
            "enrollment-tokens",
            serde_json::json!({"name": name}),
        );
        secret = made["token"].as_str().unwrap().to_string();
    }
    let hosts = numbered("agent-host", 52);
    for host in &hosts {
        let enrolled = client()
            .post(format!("{}/api/v1/agent/enroll", server.url))
            .json(&serde_json::json!({"enrollment_token": secret, "host_name": host}))
            .send()
            .unwrap();
        assert!(enrolled.status().is_success(), "{}", enrolled.status());
    }
    // Rules named in reverse, so the list's order (by name) is not the order they were made.
    let mut rules = numbered("rule", 57);
    for name in rules.iter().rev() {
        let spec = serde_json::json!({"name": name, "file_name": format!("{name}.exe")});
        api_post(&server, "rules", spec);
    }
    rules.sort();
    let patterns = numbered("lab", 54);
    for p in &patterns {
        api_post(
            &server,
            "org-rules",
            serde_json::json!({"org_node": "Sales", "host_name": format!("{p}*")}),
        );
    }

    // Scheduled reports as the write_reports task leaves them, one a day for 52 days, in the
    // server's data directory.
    let written = numbered("written", 52);
    let first_day = chrono::NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
    for (i, name) in written.iter().enumerate() {
        let day = first_day + Duration::days(i as i64);
        let folder = dir.path().join("tally-data/reports").join(day.to_string());
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("{name}.csv")), "a,b\n").unwrap();
    }

    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));
    let at = (&http, url.as_str(), admin.as_str());
    // Newest day first, after any the task has written today since the server started.
    let reports = dir.path().join("tally-data/reports");
    let files: usize = std::fs::read_dir(&reports)
        .unwrap()
        .map(|day| std::fs::read_dir(day.unwrap().path()).unwrap().count())
        .sum();
    let (first, second) = pages_hold(at, ("/reports", "written"), &written, files);
    let mine = first
        .iter()
        .position(|r| r.contains("written-051"))
        .unwrap();
    assert!(
        first[..mine].iter().all(|r| !r.contains("written-")),
        "{first:?}"
    );
    assert!(second.last().unwrap().contains("written-000"), "{second:?}");
    // The admin's own token and the ones made here.
    pages_hold(at, ("/admin/tokens", "tokens"), &tokens, 56);
    pages_hold(at, ("/admin/enrolment", "enrolment-tokens"), &enrolment, 53);
    pages_hold(at, ("/admin/agents", "agents"), &hosts, 52);
    let (first, second) = pages_hold(at, ("/rules", "rules"), &rules, 57);
    assert!(
        first[49].starts_with("rule-049") && second[0].starts_with("rule-050"),
        "{second:?}"
    );
    let (_, second) = pages_hold(at, ("/org", "org-rules"), &patterns, 54);
    assert!(
        second[0].starts_with("51Sales—lab-050*"),
        "the order goes on: {second:?}"
    );
    // Past the last page: no rows, and the way back.
    let beyond = get(&http, &url, &admin, "/admin/tokens?page=9")
        .text()
        .unwrap();
    assert!(rows_of(&beyond, "tokens").is_empty() && beyond.contains("rel=\"prev\""));
}
