//! The reclaim page over plain HTTP, without a browser, against a real `tally server`: the
//! filters as query parameters (bad ones refused), the CSV export, and the campaign's forms —
//! each needs the session's CSRF token, the auditor is shown none and refused every one, a step
//! sent twice does not skip a state, and every step is in the audit log under its operator.
//! On SQLite and on PostgreSQL.

mod common;
mod web;

use common::json::entry;
use common::{Backend, Running};
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use web::{
    audit_log, auditor_token, client, csrf_of, field_of, get, post, sign_in, text_of, value,
};

each_backend!(
    filters_are_urls_and_the_csv_is_the_filtered_list,
    the_campaign_needs_csrf_refuses_the_auditor_and_is_audited,
    the_campaign_over_the_api,
    the_applications_list_is_searched_filtered_and_sorted_by_url,
);

fn page(server: &Running, session: &str, path: &str) -> (u16, String) {
    let answer = get(&client(), &server.url, session, path);
    (answer.status().as_u16(), answer.text().unwrap())
}

fn send(server: &Running, session: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let answer = post(&client(), &server.url, session, path, form);
    let status = answer.status().as_u16();
    (status, answer.text().unwrap())
}

fn filters_are_urls_and_the_csv_is_the_filtered_list(backend: Backend) {
    let (_dir, server) = web::estate_server(&backend);
    let admin = value(&sign_in(&client(), &server.url, &server.token));

    // pc1 is in Sales, below HQ; pc2 in HQ itself.
    let (status, all) = page(&server, &admin, "/reclaim?days=90&org_node=HQ");
    assert_eq!(status, 200);
    let rows = text_of(&all, "reclaim");
    assert!(rows.contains("pc1") && rows.contains("pc2"), "{rows}");
    let (_, sales) = page(
        &server,
        &admin,
        "/reclaim?days=90&org_node=Sales&application=Office",
    );
    let rows = text_of(&sales, "reclaim");
    assert!(rows.contains("pc1") && !rows.contains("pc2"), "{rows}");
    assert!(
        sales.contains("<option value=\"Sales\" selected>"),
        "the filter is kept"
    );
    // pc1 was last used 200 days ago: not idle for 365 days; pc2 never ran, so it still is.
    let (_, year) = page(&server, &admin, "/reclaim?days=365");
    let rows = text_of(&year, "reclaim");
    assert!(!rows.contains("pc1") && rows.contains("pc2"), "{rows}");

    for bad in [
        "/reclaim?days=0",
        "/reclaim?days=ninety",
        "/reclaim?days=99999",
        "/reclaim.csv?days=-1",
    ] {
        assert_eq!(page(&server, &admin, bad).0, 400, "{bad}");
    }
    let long = format!("/reclaim?application={}", "a".repeat(300));
    assert_eq!(page(&server, &admin, &long).0, 400);
    let (status, body) = page(&server, &admin, "/reclaim?org_node=Nowhere");
    assert_eq!(status, 400);
    assert!(body.contains("no org node named"), "{body}");

    // The CSV is the filtered list: money as a number with its currency beside it.
    let csv = get(
        &client(),
        &server.url,
        &admin,
        "/reclaim.csv?days=90&org_node=Sales",
    );
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let disposition = csv.headers()[CONTENT_DISPOSITION].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"reclaim-"),
        "{disposition}"
    );
    let text = csv.text().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "application,computer,package,version,last_used,days_unused,units,cost,currency,license"
    );
    assert_eq!(lines.len(), 2, "pc1 only: {text}");
    assert!(
        lines[1].starts_with("Office,pc1,office-suite,16,"),
        "{text}"
    );
    assert!(lines[1].contains(",200,1,99.50,EUR,"), "{text}");
}

/// The campaign's form fields for pc1's Office, from the reclaim page.
fn pc1_proposal(page: &str, csrf: &str) -> Vec<(&'static str, String)> {
    let at = page
        .find("Propose reclaiming Office on pc1")
        .expect("pc1's button");
    let form = &page[page[..at].rfind("<form").unwrap()..at];
    vec![
        ("csrf", csrf.to_string()),
        ("days", "90".into()),
        ("item_application", "Office".into()),
        ("device_id", field_of(form, "device_id")),
    ]
}

fn pairs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The campaign's entries in the audit log: (action, actor).
fn campaign_audit(server: &Running) -> Vec<(String, String)> {
    audit_log(server)
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("reclaim."))
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn the_campaign_needs_csrf_refuses_the_auditor_and_is_audited(backend: Backend) {
    let (_dir, server) = web::estate_server(&backend);
    let admin = value(&sign_in(&client(), &server.url, &server.token));
    let (_, first) = page(&server, &admin, "/reclaim");
    let csrf = csrf_of(&first);
    let admin_name = text_of(&first, "operator").replace(" · admin", "");
    let proposal = pc1_proposal(&first, &csrf);

    // Without the CSRF token, or with another session's, nothing is proposed.
    let (status, body) = send(&server, &admin, "/reclaim/propose", &pairs(&proposal[1..]));
    assert_eq!(status, 403);
    assert!(body.contains("CSRF token is missing or wrong"), "{body}");
    let mut wrong = proposal.clone();
    wrong[0].1 = "0".repeat(64);
    assert_eq!(
        send(&server, &admin, "/reclaim/propose", &pairs(&wrong)).0,
        403
    );
    let mut bad = proposal.clone();
    bad[3].1 = "pc1".into();
    assert_eq!(
        send(&server, &admin, "/reclaim/propose", &pairs(&bad)).0,
        400
    );
    assert!(campaign_audit(&server).is_empty());

    let (status, _) = send(&server, &admin, "/reclaim/propose", &pairs(&proposal));
    assert_eq!(status, 303);
    let (status, body) = send(&server, &admin, "/reclaim/propose", &pairs(&proposal));
    assert_eq!(status, 409, "on the list already");
    assert!(body.contains("on the reclaim list already"), "{body}");
    let (_, proposed) = page(&server, &admin, "/reclaim");
    let totals = text_of(&proposed, "total-proposed");
    assert!(totals.contains("99.50 EUR"), "{totals}");
    let step_path = {
        let at = proposed.find("action=\"/reclaim/items/").unwrap() + "action=\"".len();
        proposed[at..at + proposed[at..].find('"').unwrap()].to_string()
    };

    // The auditor sees the campaign without a control and is refused each form.
    let auditor = value(&sign_in(&client(), &server.url, &auditor_token(&server)));
    let (_, seen) = page(&server, &auditor, "/reclaim");
    assert!(text_of(&seen, "campaign").contains("proposed"));
    assert!(!seen.contains("/reclaim/propose") && !seen.contains("/reclaim/items/"));
    let auditor_csrf = csrf_of(&seen);
    let mut forged = proposal.clone();
    forged[0].1 = auditor_csrf.clone();
    let (status, body) = send(&server, &auditor, "/reclaim/propose", &pairs(&forged));
    assert_eq!(status, 403);
    assert!(body.contains("read-only"), "{body}");
    let step = [("csrf", auditor_csrf.as_str()), ("from", "proposed")];
    assert_eq!(send(&server, &auditor, &step_path, &step).0, 403);

    // The admin confirms, then marks it removed; a step sent twice skips nothing.
    let confirm = [
        ("csrf", csrf.as_str()),
        ("from", "proposed"),
        ("days", "90"),
    ];
    assert_eq!(send(&server, &admin, &step_path, &confirm[..2]).0, 303);
    assert_eq!(
        send(&server, &admin, &step_path, &confirm).0,
        404,
        "not proposed any more"
    );
    let odd = [("csrf", csrf.as_str()), ("from", "gone")];
    assert_eq!(send(&server, &admin, &step_path, &odd).0, 400);
    let remove = [("csrf", csrf.as_str()), ("from", "confirmed")];
    assert_eq!(send(&server, &admin, &step_path, &remove).0, 303);
    let (_, done) = page(&server, &admin, "/reclaim");
    let removed = text_of(&done, "total-removed");
    assert!(
        removed.contains('1') && removed.contains("99.50 EUR"),
        "{removed}"
    );
    assert!(!text_of(&done, "total-proposed").contains("EUR"));
    let last = [("csrf", csrf.as_str()), ("from", "removed")];
    assert_eq!(
        send(&server, &admin, &step_path, &last).0,
        400,
        "removed is the last step"
    );

    let expected: Vec<(String, String)> =
        ["reclaim.proposed", "reclaim.confirmed", "reclaim.removed"]
            .iter()
            .map(|a| (a.to_string(), admin_name.clone()))
            .collect();
    let mut logged = campaign_audit(&server);
    logged.sort();
    let mut wanted = expected;
    wanted.sort();
    assert_eq!(logged, wanted);
}

/// A JSON call to the API with `token`: the status and the answer (`null` when empty).
fn api(
    server: &Running,
    token: &str,
    (method, path): (reqwest::Method, &str),
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut call = client()
        .request(method, format!("{}{path}", server.url))
        .bearer_auth(token);
    if let Some(body) = body {
        call = call.json(&body);
    }
    let answer = call.send().unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// The same campaign through `/api/v1/reclaim/campaign`: proposed and stepped by the admin,
/// refused to the auditor, with the totals per state.
fn the_campaign_over_the_api(backend: Backend) {
    use reqwest::Method;
    let (_dir, server) = web::estate_server(&backend);
    let auditor = auditor_token(&server);
    let (_, devices) = api(
        &server,
        &server.token,
        (Method::GET, "/api/v1/devices"),
        None,
    );
    let pc2 = entry(&devices, "host_name", "pc2")["id"].as_i64().unwrap();
    let proposal = serde_json::json!({ "application": "Office", "device_id": pc2 });
    let path = (Method::POST, "/api/v1/reclaim/campaign");
    let (status, _) = api(&server, &auditor, path.clone(), Some(proposal.clone()));
    assert_eq!(status, 403);
    let odd = serde_json::json!({ "application": "Office", "device_id": pc2, "days": 0 });
    assert_eq!(api(&server, &server.token, path.clone(), Some(odd)).0, 400);
    let (status, item) = api(&server, &server.token, path.clone(), Some(proposal.clone()));
    assert_eq!(status, 201, "{item}");
    assert_eq!(
        (item["state"].as_str(), item["host_name"].as_str()),
        (Some("proposed"), Some("pc2"))
    );
    assert_eq!(api(&server, &server.token, path, Some(proposal)).0, 409);

    let step = format!("/api/v1/reclaim/campaign/{}/step", item["id"]);
    let from = |state: &str| Some(serde_json::json!({ "from": state }));
    assert_eq!(
        api(&server, &auditor, (Method::POST, &step), from("proposed")).0,
        403
    );
    assert_eq!(
        api(
            &server,
            &server.token,
            (Method::POST, &step),
            from("confirmed")
        )
        .0,
        404
    );
    assert_eq!(
        api(
            &server,
            &server.token,
            (Method::POST, &step),
            from("proposed")
        )
        .0,
        204
    );
    let (status, camp) = api(
        &server,
        &auditor,
        (Method::GET, "/api/v1/reclaim/campaign"),
        None,
    );
    assert_eq!(status, 200, "the auditor reads the campaign");
    let confirmed = &camp["totals"][1];
    assert_eq!(confirmed["state"], "confirmed");
    assert_eq!(confirmed["items"], 1);
    assert_eq!(
        confirmed["cost"],
        serde_json::json!([{ "minor": 9950, "currency": "EUR" }])
    );
    assert_eq!(
        camp["items"][0]["confirmed"]["by"],
        camp["items"][0]["proposed"]["by"]
    );
}

/// The applications list (issue 17 item 10): searched, filtered by status and metric, sorted
/// and paged by query parameters on the server, an over-long parameter refused.
fn the_applications_list_is_searched_filtered_and_sorted_by_url(backend: Backend) {
    let (_dir, server) = web::estate_server(&backend);
    let admin = value(&sign_in(&client(), &server.url, &server.token));
    let rows = |path: &str| {
        let (status, body) = page(&server, &admin, path);
        assert_eq!(status, 200, "{path}");
        text_of(&body, "applications")
    };
    let both = rows("/applications?sort=name&dir=desc");
    let (office, chat) = (both.find("Office").unwrap(), both.find("Chat").unwrap());
    assert!(office < chat, "descending by name: {both}");
    let both = rows("/applications?sort=name");
    assert!(
        both.find("Chat").unwrap() < both.find("Office").unwrap(),
        "{both}"
    );
    let found = rows("/applications?q=CONTOSO");
    assert!(
        found.contains("Office") && !found.contains("Chat"),
        "by publisher: {found}"
    );
    let users = rows("/applications?metric=users");
    assert!(
        users.contains("Chat") && !users.contains("Office"),
        "{users}"
    );
    let short = rows("/applications?status=under_licensed&metric=installations");
    assert!(short.contains("Office"), "{short}");
    let none = rows("/applications?status=under_licensed&metric=users");
    assert!(none.contains("No application matches."), "{none}");
    let (_, second) = page(&server, &admin, "/applications?page=2");
    assert!(text_of(&second, "applications").contains("No application matches."));
    let long = format!("/applications?metric={}", "m".repeat(300));
    assert_eq!(page(&server, &admin, &long).0, 400);
}
