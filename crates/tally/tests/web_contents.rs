//! What the console's pages say, checked against what was put in, over plain HTTP against a
//! real `tally server`, on SQLite and on PostgreSQL: the agents' columns (version, heartbeat,
//! dropped records), a user's page and the programs by month after an agent's upload is
//! summarised, a license attached to a computer and to a user picked by name, the reports in
//! HTML and JSON and the estate exported as JSON.

mod common;
mod web;

use chrono::Datelike;
use common::{code_record, enrol_agent, run_task, server_on, Backend, Running};
use web::{client, csrf_of, get, post, rows_of, sign_in, text_of, value};

each_backend!(
    agents_users_and_programs_show_what_the_agent_sent,
    licenses_attach_to_computers_and_users_by_name,
    reports_and_exports_download_as_html_and_json,
);

/// Posts `body` as the agent with `creds` to its endpoint `path`; asserts it was taken.
fn as_agent(server: &Running, creds: &str, path: &str, body: serde_json::Value) {
    let answer = client()
        .post(format!("{}/api/v1/agent/{path}", server.url))
        .bearer_auth(creds)
        .json(&body)
        .send()
        .unwrap();
    assert!(answer.status().is_success(), "{path}: {}", answer.status());
}

fn agents_users_and_programs_show_what_the_agent_sent(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    let rule = serde_json::json!({"name": "Editor", "file_name": "code"});
    let made = web::api_post(&server, "/api/v1/rules", &rule);
    assert!(made.status().is_success());
    let agent = enrol_agent(&server.url, &server.token, "laptop-7");
    let now = chrono::Utc::now();
    let heartbeat = serde_json::json!({"agent_version": "9.8.7", "sent_at": now});
    as_agent(&server, &agent, "heartbeat", heartbeat);
    // Two runs of 30 and 60 minutes by alice on the first of this month; 3 records dropped.
    let day = now.date_naive().with_day(1).unwrap();
    let run = |id: &str, from: &str, to: &str| {
        let (start, end) = (format!("{day}T{from}:00Z"), format!("{day}T{to}:00Z"));
        code_record(id, "alice", (&start, &end), (true, false))
    };
    let batch = serde_json::json!({"batch_id": "b1", "dropped": 3,
        "records": [run("r1", "08:00", "08:30"), run("r2", "10:00", "11:00")]});
    as_agent(&server, &agent, "usage", batch);
    run_task(&server, "summarize_monthly_usage");

    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));
    let page = |path: &str| get(&http, &url, &admin, path).text().unwrap();

    let agents_page = page("/admin/agents");
    assert!(
        agents_page.contains("<td class=\"num bad\">3</td>"),
        "the dropped-records cell says 3, marked bad"
    );
    let agents = rows_of(&agents_page, "agents");
    assert_eq!(agents.len(), 1, "{agents:?}");
    let row = &agents[0];
    assert!(row.starts_with("laptop-7"), "{row}");
    assert!(row.contains("9.8.7"), "the version: {row}");
    assert!(
        row.contains(&now.format("%Y-%m-%d").to_string()),
        "heartbeat: {row}"
    );

    let month = day.format("%Y-%m").to_string();
    let programs = rows_of(&page("/programs"), "programs");
    assert_eq!(
        programs,
        vec![format!("Editor{month}211{}", "1.5 h")],
        "runs 2, users 1, computers 1, 90 minutes"
    );

    let users = rows_of(&page("/users"), "users");
    let alice = users.iter().find(|r| r.starts_with("alice")).unwrap();
    assert!(!alice.is_empty());
    let listed = page("/users");
    let href = listed
        .split("href=\"/users/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap();
    let user = page(&format!("/users/{href}"));
    let figures = text_of(&user, "user");
    assert!(figures.contains("alice"), "{figures}");
    let used = user.split("What they ran").nth(1).unwrap();
    for cell in ["Editor", "laptop-7", &month, "1.5 h"] {
        assert!(used.contains(cell), "{cell} on alice's page");
    }
}

/// The license form's fields for 1 Office installation assigned to `kind` `to`.
fn assigned(csrf: &str, kind: &str, to: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", csrf.to_string()),
        ("application", "Office".into()),
        ("metric", "installations".into()),
        ("quantity", "1".into()),
        ("assignment_type", kind.into()),
        ("assigned_to", to.into()),
    ]
}

fn licenses_attach_to_computers_and_users_by_name(backend: Backend) {
    let (_dir, server) = web::estate_server(&backend);
    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));
    let csrf = csrf_of(&get(&http, &url, &admin, "/licenses/new").text().unwrap());
    let send = |form: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = post(&http, &url, &admin, "/licenses", &pairs);
        (answer.status().as_u16(), answer.text().unwrap())
    };
    let (status, body) = send(assigned(&csrf, "computer", "pc2"));
    assert_eq!(
        status,
        303,
        "{}",
        body.split("class=\"error").nth(1).unwrap_or(&body)
    );
    assert_eq!(send(assigned(&csrf, "user", "ann")).0, 303);
    // A name that is not there is the form's own error, and nothing is stored.
    let (status, refused) = send(assigned(&csrf, "computer", "pc404"));
    assert_eq!(status, 422);
    let error = text_of(&refused, "assigned_to-error");
    assert_eq!(
        error, "no computer named &quot;pc404&quot;",
        "escaped as HTML"
    );
    // The form offers the names to pick from: computers and users as well as org nodes.
    let form = get(&http, &url, &admin, "/licenses/new").text().unwrap();
    for (list, name) in [("names-computer", "pc2"), ("names-user", "ann")] {
        let at = form.find(&format!("id=\"{list}\"")).unwrap();
        let options = &form[at..at + form[at..].find("</datalist>").unwrap()];
        assert!(
            options.contains(&format!("value=\"{name}\"")),
            "{list}: {options}"
        );
    }

    let licenses = web::api(&server, "/api/v1/licenses");
    let to = |kind: &str| {
        let all = licenses.as_array().unwrap().iter();
        let found: Vec<_> = all.filter(|l| l["assignment_type"] == kind).collect();
        assert_eq!(found.len(), 1, "{kind}: {licenses}");
        found[0]["assigned_to"].clone()
    };
    let id_of = |path: &str, field: &str, name: &str| {
        let all = web::api(&server, path);
        let found = all.as_array().unwrap().iter().find(|r| r[field] == name);
        found.unwrap()["id"].clone()
    };
    assert_eq!(to("computer"), id_of("/api/v1/devices", "host_name", "pc2"));
    assert_eq!(to("user"), id_of("/api/v1/users", "account", "ann"));
    let list = text_of(
        &get(&http, &url, &admin, "/licenses").text().unwrap(),
        "license-list",
    );
    assert!(list.contains("pc2") && list.contains("ann"), "{list}");

    // Seed 002's warning, shown on the page the form answers: two units on a computer that
    // holds one installation are saved, and the page says one can never be used.
    let mut two = assigned(&csrf, "computer", "pc1");
    two[3].1 = "2".into();
    let (status, saved) = send(two);
    assert_eq!(status, 200);
    assert!(
        saved.contains("1 of its 2 units can be used, 1 never"),
        "the warning: {saved}"
    );
}

fn reports_and_exports_download_as_html_and_json(backend: Backend) {
    let (_dir, server) = web::estate_server(&backend);
    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));
    let download = |path: &str| {
        let answer = get(&http, &url, &admin, path);
        assert_eq!(answer.status(), 200, "{path}");
        let kind = answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        (kind, answer.text().unwrap())
    };

    let (kind, html) = download("/reports/reclaim/download?days=90&format=html");
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(html.contains("<html") && html.contains("pc1"), "{html}");
    let (kind, json) = download("/reports/reclaim/download?days=90&format=json");
    assert!(kind.starts_with("application/json"), "{kind}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(report.to_string().contains("pc1"), "{report}");

    let (kind, json) = download("/export/devices.json");
    assert!(kind.starts_with("application/json"), "{kind}");
    let devices: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut hosts: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["host_name"].as_str().unwrap())
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["pc1", "pc2", "pc3"]);
}
