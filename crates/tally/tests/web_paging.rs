//! The console's long estate lists page on the server, on SQLite and on PostgreSQL: licenses
//! by page number, users by a cursor; the reclaim list, the reclaim campaign, the audit log and
//! the programs by month by page number; page 2 holds the rows page 1 did not, each once.

mod common;
mod web;

use chrono::Datelike;
use common::{server_on, Backend};
use web::{client, get, import_paths, pages_hold, rows_of, sign_in, value};

each_backend!(
    licenses_and_users_page_on_the_server,
    reclaim_campaign_audit_and_programs_page_on_the_server,
);

/// Writes `text` to `name` in `dir`; its path.
fn file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The `href` of the page's "next page" link.
fn next_href(page: &str) -> String {
    let rest = page
        .split("rel=\"next\" href=\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no next page in {page}"));
    rest.split('"').next().unwrap().replace("&amp;", "&")
}

fn licenses_and_users_page_on_the_server(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    let mut licenses = String::from("application,metric,quantity,assignment_type\n");
    let mut users = String::from("account,full_name\n");
    for i in 1..=55 {
        licenses.push_str(&format!("Office,installations,{i},organization\n"));
    }
    for i in 1..=60 {
        users.push_str(&format!("u{i:03},User {i}\n"));
    }
    let apps = r#"[{"name": "Office", "metric": "installations", "software": "office*"}]"#;
    let paths = [
        file(dir.path(), "applications.json", apps),
        file(dir.path(), "licenses.csv", &licenses),
        file(dir.path(), "users.csv", &users),
    ];
    import_paths(dir.path(), &backend, &paths);
    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));

    // Licenses: 50 on page 1, the other 5 on page 2, each quantity once.
    let page = |path: &str, id: &str| rows_of(&get(&http, &url, &admin, path).text().unwrap(), id);
    let first = page("/licenses", "license-list");
    let second = page("/licenses?page=2", "license-list");
    assert_eq!((first.len(), second.len()), (50, 5));
    let mut all: Vec<&String> = first.iter().chain(&second).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 55, "no license on both pages");

    // Users: a page of 50, then the next page by its cursor; every account once.
    let text = get(&http, &url, &admin, "/users").text().unwrap();
    let first = rows_of(&text, "users");
    let second = page(&next_href(&text), "users");
    assert_eq!((first.len(), second.len()), (50, 10));
    for i in 1..=60 {
        let account = format!("u{i:03}User");
        let found = first
            .iter()
            .chain(&second)
            .filter(|r| r.starts_with(&account));
        assert_eq!(found.count(), 1, "{account} once in {first:?} {second:?}");
    }
}

fn reclaim_campaign_audit_and_programs_page_on_the_server(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    let today = chrono::Utc::now().date_naive();
    let long_ago = today - chrono::Duration::days(200);
    let hosts: Vec<String> = (0..55).map(|i| format!("pc-{i:03}")).collect();
    let mut devices = String::from("host_name,status\n");
    let mut installs = String::from("host_name,software,version\n");
    for h in &hosts {
        devices.push_str(&format!("{h},active\n"));
        installs.push_str(&format!("{h},office-suite,16\n"));
    }
    // Office's use is known (a session 200 days ago on pc-000), so every installation idle
    // for 90 days is reclaimable.
    let sessions = format!(
        "application,host_name,account,start,end\n\
         Office,pc-000,ann,{long_ago}T09:00:00Z,{long_ago}T10:00:00Z\n"
    );
    let apps = r#"[{"name": "Office", "metric": "installations", "software": "office*"}]"#;
    let paths = [
        file(dir.path(), "applications.json", apps),
        file(dir.path(), "devices.csv", &devices),
        file(
            dir.path(),
            "users.csv",
            "account,full_name\nann,Ann Smith\n",
        ),
        file(dir.path(), "installations.csv", &installs),
        file(dir.path(), "usage_sessions.csv", &sessions),
    ];
    import_paths(dir.path(), &backend, &paths);
    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));
    let at = (&http, url.as_str(), admin.as_str());

    // The reclaim list: 55 idle installations, 50 and 5.
    pages_hold(at, ("/reclaim?days=90", "reclaim"), &hosts, 55);

    // The campaign: 52 proposed, 50 on its first page and 2 on its second, each host once.
    let listed: serde_json::Value = http
        .get(format!("{url}/api/v1/devices"))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let proposed = &hosts[..52];
    for d in listed.as_array().unwrap() {
        if !proposed.iter().any(|h| d["host_name"] == h.as_str()) {
            continue;
        }
        let answer = http
            .post(format!("{url}/api/v1/reclaim/campaign"))
            .bearer_auth(&server.token)
            .json(&serde_json::json!({"application": "Office", "device_id": d["id"]}))
            .send()
            .unwrap();
        assert_eq!(answer.status(), 201);
    }
    let campaign = |n: usize| {
        let page = get(&http, &url, &admin, &format!("/reclaim?campaign_page={n}"));
        rows_of(&page.text().unwrap(), "campaign")
    };
    let (first, second) = (campaign(1), campaign(2));
    assert_eq!((first.len(), second.len()), (50, 2), "{second:?}");
    for h in proposed {
        let found = first
            .iter()
            .chain(&second)
            .filter(|r| r.contains(h.as_str()));
        assert_eq!(found.count(), 1, "{h} once in the campaign");
    }

    // The audit log, filtered to the proposals: 52 entries, 50 and 2.
    pages_hold(
        at,
        ("/admin/audit?action=reclaim.proposed", "audit"),
        &[],
        52,
    );

    // Programs by month: five rules metering `code`, used in each of the last 11 months,
    // summarised: 55 rows of (program, month), 50 and 5, each pair once.
    let rules: Vec<String> = (0..5).map(|i| format!("Editor-{i}")).collect();
    for name in &rules {
        let spec = serde_json::json!({"name": name, "file_name": "code"});
        let made = http
            .post(format!("{url}/api/v1/rules"))
            .bearer_auth(&server.token)
            .json(&spec)
            .send()
            .unwrap();
        assert!(made.status().is_success(), "{}", made.status());
    }
    let agent = common::enrol_agent(&url, &server.token, "laptop-1");
    let first_of_month = today.with_day(1).unwrap();
    let months: Vec<chrono::NaiveDate> = (0..11)
        .map(|i| first_of_month - chrono::Months::new(i))
        .collect();
    let records: Vec<serde_json::Value> = months
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (start, end) = (format!("{m}T08:00:00Z"), format!("{m}T08:30:00Z"));
            common::code_record(&format!("run-{i}"), "alice", (&start, &end), (true, false))
        })
        .collect();
    let sent = http
        .post(format!("{url}/api/v1/agent/usage"))
        .bearer_auth(&agent)
        .json(&serde_json::json!({"batch_id": "months", "records": records}))
        .send()
        .unwrap();
    assert_eq!(sent.status(), 200);
    common::run_task(&server, "summarize_monthly_usage");
    let (first, second) = pages_hold(at, ("/programs", "programs"), &[], 55);
    for rule in &rules {
        for m in &months {
            let month = m.format("%Y-%m").to_string();
            let key = format!("{rule}{month}");
            let found = first.iter().chain(&second).filter(|r| r.starts_with(&key));
            assert_eq!(found.count(), 1, "{key} once in {first:?} {second:?}");
        }
    }
}
