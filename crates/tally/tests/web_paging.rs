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
    the_org_tree_pages_in_tree_order,
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
    let listed = web::api(&server, "/api/v1/devices");
    let proposed = &hosts[..52];
    for d in listed.as_array().unwrap() {
        if !proposed.iter().any(|h| d["host_name"] == h.as_str()) {
            continue;
        }
        let proposal = serde_json::json!({"application": "Office", "device_id": d["id"]});
        let answer = web::api_post(&server, "/api/v1/reclaim/campaign", &proposal);
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
        let made = web::api_post(&server, "/api/v1/rules", &spec);
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

/// The org tree's node names on one of its pages: (name, continued from an earlier page).
fn tree_nodes(page: &str) -> Vec<(String, bool)> {
    let at = page.find("id=\"org-tree\"").expect("the tree");
    let tree = &page[at..at + page[at..].find("</section>").unwrap()];
    tree.split("<span class=\"node")
        .skip(1)
        .map(|s| {
            let continued = s.starts_with(" continued");
            let name = s.split('>').nth(1).unwrap().split('<').next().unwrap();
            (name.trim_end_matches(" (continued)").to_string(), continued)
        })
        .collect()
}

/// A tree of 1 + 3 × 40 nodes (HQ; Region-0..2 under it, each with 39 offices) pages by 50
/// nodes in tree order; a page that starts inside a branch repeats the nodes above it, marked
/// continued; every node is on exactly one page, and the lists nest as the tree does.
fn the_org_tree_pages_in_tree_order(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    let mut nodes = String::from("name,parent\nHQ,\n");
    for r in 0..3 {
        nodes.push_str(&format!("Region-{r},HQ\n"));
        for o in 0..39 {
            nodes.push_str(&format!("Office-{r}-{o:02},Region-{r}\n"));
        }
    }
    import_paths(
        dir.path(),
        &backend,
        &[file(dir.path(), "org_nodes.csv", &nodes)],
    );
    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));
    let pages: Vec<String> = (1..=3)
        .map(|n| {
            let path = format!("/org?tree_page={n}");
            get(&http, &url, &admin, &path).text().unwrap()
        })
        .collect();
    assert!(pages[0].contains("Page 1 of 3 · 121 rows"));
    let own: Vec<Vec<String>> = pages
        .iter()
        .map(|p| {
            let all = tree_nodes(p);
            all.into_iter()
                .filter(|(_, c)| !c)
                .map(|(n, _)| n)
                .collect()
        })
        .collect();
    assert_eq!(own.iter().map(Vec::len).collect::<Vec<_>>(), [50, 50, 21]);
    // Tree order: HQ, Region-0, its offices, Region-1, …
    assert_eq!(&own[0][..3], ["HQ", "Region-0", "Office-0-00"]);
    assert_eq!(
        own[1][0], "Office-1-08",
        "page 2 goes on where page 1 stopped"
    );
    let mut every: Vec<&String> = own.iter().flatten().collect();
    every.sort();
    every.dedup();
    assert_eq!(every.len(), 121, "each node on one page");
    // Page 2 starts inside Region-1: HQ and Region-1 come first, marked continued.
    let second = tree_nodes(&pages[1]);
    assert_eq!(
        &second[..3],
        [
            ("HQ".to_string(), true),
            ("Region-1".to_string(), true),
            ("Office-1-08".to_string(), false)
        ]
    );
    // The lists nest: as many opened as closed, and an office three lists deep.
    let at = pages[1].find("id=\"org-tree\"").unwrap();
    let tree = &pages[1][at..at + pages[1][at..].find("</section>").unwrap()];
    assert_eq!(tree.matches("<ul>").count(), tree.matches("</ul>").count());
    assert_eq!(tree.matches("<li>").count(), tree.matches("</li>").count());
    let before = &tree[..tree.find("Office-1-08").unwrap()];
    let depth = before.matches("<ul>").count() - before.matches("</ul>").count();
    assert_eq!(depth, 3, "HQ › Region-1 › Office-1-08");
}
