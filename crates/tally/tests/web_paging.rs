//! The console's long estate lists page on the server, on SQLite and on PostgreSQL: licenses
//! by page number, users by a cursor; page 2 holds the rows page 1 did not, each once.

mod common;
mod web;

use common::{server_on, Backend};
use web::{client, get, import_paths, rows_of, sign_in, value};

each_backend!(licenses_and_users_page_on_the_server);

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
