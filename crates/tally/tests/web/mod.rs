//! What the web console tests share: a small estate imported into a real `tally server`, and
//! plain HTTP calls that keep cookies by hand so each attribute can be checked.

// Each test file uses part of these.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::{COOKIE, SET_COOKIE};

use crate::common::json::entry;
use crate::common::{server_on, tally_json, write, Backend, Running};

/// `tally server` in a new folder with [`import_estate`]'s estate in its database: where most
/// console tests start. The folder is removed when the test drops it, after the server.
pub fn estate_server(backend: &Backend) -> (tempfile::TempDir, Running) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), backend);
    import_estate(dir.path(), backend);
    (dir, server)
}

/// Imports the estate every console test reads: Office on pc1 and pc2 (pc3 is retired) with
/// one license for Sales, so Office is one installation short, last used on pc1 200 days ago;
/// Chat, measured in users.
pub fn import_estate(dir: &Path, backend: &Backend) {
    let today = chrono::Utc::now().date_naive();
    let soon = (today + chrono::Duration::days(20)).to_string();
    let long_ago = today - chrono::Duration::days(200);
    let files = vec![
        write(dir, "org_nodes.csv", "name,parent\nSales,HQ\nHQ,\n"),
        write(
            dir,
            "devices.csv",
            "host_name,org_node,status,sockets,cores\npc1,Sales,active,1,4\npc2,HQ,active,1,4\npc3,HQ,retired,1,4\n",
        ),
        write(dir, "users.csv", "account,full_name,service_account\nann,Ann Smith,false\n"),
        write(
            dir,
            "applications.json",
            r#"[{"name": "Office", "publisher": "Contoso", "metric": "installations", "software": "office*"},
                {"name": "Chat", "metric": "users"}]"#,
        ),
        write(
            dir,
            "installations.csv",
            "host_name,software,version\npc1,office-suite,16\npc2,office-suite,16\npc3,office-suite,16\n",
        ),
        write(
            dir,
            "usage_sessions.csv",
            &format!(
                "application,host_name,account,start,end\n\
                 Office,pc1,ann,{long_ago}T09:00:00Z,{long_ago}T10:00:00Z\n"
            ),
        ),
        write(
            dir,
            "licenses.csv",
            &format!(
                "application,metric,quantity,assignment_type,assigned_to,unit_cost,currency,maintenance_until\n\
                 Office,installations,1,organization,Sales,99.50,EUR,{soon}\n"
            ),
        ),
    ];
    import_paths(dir, backend, &files);
}

/// Loads the files at `paths` with `tally import`, which must succeed.
pub fn import_paths(dir: &Path, backend: &Backend, paths: &[String]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("import")
        .args(paths)
        .args(["--data-dir", dir.join("tally-data").to_str().unwrap()])
        .args(backend.db_args())
        .output()
        .unwrap();
    crate::common::assert_ok(&out);
}

/// A new auditor token, made by the admin.
pub fn auditor_token(server: &Running) -> String {
    let created = tally_json(
        server,
        &server.token,
        &[
            "tokens",
            "create",
            "--name",
            "ada-auditor",
            "--role",
            "auditor",
        ],
    );
    created[0]["token"].as_str().unwrap().to_string()
}

/// A client that follows no redirect, so each answer is seen as sent.
pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The `Set-Cookie` header of `response` for cookie `name`.
pub fn set_cookie(response: &Response, name: &str) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie for {name}: {:?}", response.headers()))
}

/// The value a `Set-Cookie` header sets.
pub fn value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_string()
}

/// The value of the hidden `csrf` field in a page.
pub fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("the page has a CSRF field");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Signs in with `token` through the form; the session cookie's `Set-Cookie` header.
pub fn sign_in(http: &Client, url: &str, token: &str) -> String {
    let form = http.get(format!("{url}/sign-in")).send().unwrap();
    let nonce = value(&set_cookie(&form, "tally_signin"));
    let csrf = csrf_of(&form.text().unwrap());
    let signed = http
        .post(format!("{url}/sign-in"))
        .header(COOKIE, format!("tally_signin={nonce}"))
        .form(&[("token", token), ("csrf", &csrf)])
        .send()
        .unwrap();
    assert_eq!(signed.status(), 303, "signed in and sent on");
    assert_eq!(signed.headers()["location"], "/");
    set_cookie(&signed, "tally_session")
}

/// GET `path` with the session cookie.
pub fn get(http: &Client, url: &str, session: &str, path: &str) -> Response {
    http.get(format!("{url}{path}"))
        .header(COOKIE, format!("tally_session={session}"))
        .send()
        .unwrap()
}

/// POST `form` to `path` with the session cookie.
pub fn post(
    http: &Client,
    url: &str,
    session: &str,
    path: &str,
    form: &[(&str, &str)],
) -> Response {
    http.post(format!("{url}{path}"))
        .header(COOKIE, format!("tally_session={session}"))
        .form(form)
        .send()
        .unwrap()
}

/// The licenses the API lists now.
pub fn licenses(server: &Running) -> Vec<serde_json::Value> {
    tally_json(server, &server.token, &["licenses"])
        .as_array()
        .unwrap()
        .clone()
}

/// The id of the first row of `list` (a CLI listing) whose `key` is `name`: the pages of one
/// device, user or token are addressed by it.
pub fn id_of(server: &Running, list: &[&str], key: &str, name: &str) -> String {
    let rows = tally_json(server, &server.token, list);
    entry(&rows, key, name)["id"].to_string()
}

/// The headless browser the console's browser tests drive.
pub mod browser;

/// What the API answers the admin at `path` (e.g. `/api/v1/audit`).
pub fn api(server: &Running, path: &str) -> serde_json::Value {
    client()
        .get(format!("{}{path}", server.url))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// What the API answers the admin's POST of `body` to `path` (e.g. `/api/v1/rules`).
pub fn api_post(server: &Running, path: &str, body: &serde_json::Value) -> Response {
    client()
        .post(format!("{}{path}", server.url))
        .bearer_auth(&server.token)
        .json(body)
        .send()
        .unwrap()
}

/// The audit log's entries, as the admin reads them from the API.
pub fn audit_log(server: &Running) -> Vec<serde_json::Value> {
    api(server, "/api/v1/audit?limit=1000")
        .as_array()
        .unwrap()
        .clone()
}

/// The value of the first hidden field `name` in a page.
pub fn field_of(page: &str, name: &str) -> String {
    let start = format!("name=\"{name}\" value=\"");
    let at = page
        .find(&start)
        .unwrap_or_else(|| panic!("the page has a {name} field"));
    let rest = &page[at + start.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The text of the element with `id` in a page, tags stripped (for simple cells and rows).
pub fn text_of(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id}"));
    let open = page[..at].rfind('<').unwrap();
    let tag: String = page[open + 1..]
        .chars()
        .take_while(|c| c.is_alphanumeric())
        .collect();
    let end = at + page[at..].find(&format!("</{tag}>")).unwrap();
    after_tag(&page[at..end])
}

/// The text of `html` after the end of the tag it starts in, tags stripped.
fn after_tag(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars().skip_while(|c| *c != '>').skip(1) {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// The host names of the devices the API lists now.
pub fn host_names(server: &Running) -> Vec<String> {
    api(server, "/api/v1/devices?limit=1000")
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["host_name"].as_str().unwrap().to_string())
        .collect()
}

/// Writes `files` (name, text) into a new folder under `dir`; their paths.
pub fn files(dir: &Path, folder: &str, files: &[(&str, &str)]) -> Vec<String> {
    let at = dir.join(folder);
    std::fs::create_dir_all(&at).unwrap();
    files
        .iter()
        .map(|(name, text)| write(&at, name, text))
        .collect()
}

/// A `multipart/form-data` body of `parts` (name, file name for a file, bytes); its content
/// type and bytes.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "tally-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").bytes(),
        );
        if let Some(file) = file {
            body.extend(format!("; filename=\"{file}\"\r\nContent-Type: text/csv").bytes());
        }
        body.extend(b"\r\n\r\n");
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// POST a multipart body to `path` with the session cookie.
pub fn post_multipart(
    http: &Client,
    url: &str,
    session: &str,
    path: &str,
    parts: &[(&str, Option<&str>, &[u8])],
) -> Response {
    let (content_type, body) = multipart(parts);
    http.post(format!("{url}{path}"))
        .header(COOKIE, format!("tally_session={session}"))
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .unwrap()
}

/// The status code of a multipart POST of `parts` sent over a plain socket: for a body the
/// server refuses part way through, where an HTTP client fails on the write the server no
/// longer reads and never shows the answer already sent.
pub fn raw_multipart_status(
    url: &str,
    session: &str,
    path: &str,
    parts: &[(&str, Option<&str>, &[u8])],
) -> u16 {
    use std::io::{Read, Write};
    let (content_type, body) = multipart(parts);
    let host = url.strip_prefix("http://").unwrap();
    let mut socket = std::net::TcpStream::connect(host).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    socket
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nCookie: tally_session={session}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The server may stop reading and close before the whole body is written.
    let _ = socket
        .write_all(head.as_bytes())
        .and_then(|()| socket.write_all(&body));
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .unwrap_or_else(|| panic!("no answer: {text:?}"));
    status.parse().unwrap()
}

/// The HTML of each body row of the table with `id` in a page.
fn body_rows<'p>(page: &'p str, id: &str) -> Vec<&'p str> {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id}"));
    let table = &page[at..at + page[at..].find("</table>").unwrap()];
    let body = &table[table.find("<tbody>").unwrap_or(0)..];
    body.split("<tr").skip(1).collect()
}

/// The text of each body row of the table with `id` in a page, tags stripped.
pub fn rows_of(page: &str, id: &str) -> Vec<String> {
    body_rows(page, id).into_iter().map(after_tag).collect()
}

/// The text of each cell of the first body row of the table with `id` whose first cell is
/// `first`, tags stripped.
pub fn cells_of(page: &str, id: &str, first: &str) -> Vec<String> {
    let cells = |row: &str| -> Vec<String> { row.split("<td").skip(1).map(after_tag).collect() };
    let rows = body_rows(page, id).into_iter().map(cells);
    let mut found = rows.filter(|cells| cells.first().is_some_and(|c| c.trim() == first));
    found
        .next()
        .unwrap_or_else(|| panic!("no row {first} in table {id}"))
}

/// Viewer, measured in concurrent users over a rolling 30 days: three days ago ann, bob and cy
/// used it in the 10:00 hour (never all at one instant) and a service account too, bob on
/// into 11:00; ten days ago ann alone.
pub fn import_viewer(dir: &Path, backend: &Backend) -> (String, String) {
    let today = chrono::Utc::now().date_naive();
    let days = |n| today - chrono::Duration::days(n);
    let (d3, d10) = (days(3), days(10));
    let sessions = format!(
        "application,host_name,account,start,end\n\
         Viewer,pc1,ann,{d3}T10:00:00Z,{d3}T10:50:00Z\n\
         Viewer,pc2,bob,{d3}T10:10:00Z,{d3}T11:20:00Z\n\
         Viewer,pc1,cy,{d3}T10:30:00Z,{d3}T10:40:00Z\n\
         Viewer,pc2,svc,{d3}T10:00:00Z,{d3}T10:59:00Z\n\
         Viewer,pc1,ann,{d10}T09:00:00Z,{d10}T09:30:00Z\n"
    );
    let paths = files(
        dir,
        "viewer",
        &[
            (
                "users.csv",
                "account,full_name,service_account\nbob,Bob Jones,false\ncy,Cy Twombly,false\nsvc,Backup,true\n",
            ),
            (
                "applications.json",
                r#"[{"name": "Viewer", "metric": "concurrent_users", "period_days": 30}]"#,
            ),
            ("usage_sessions.csv", &sessions),
            (
                "licenses.csv",
                "application,metric,quantity,assignment_type,assigned_to\nViewer,concurrent_users,2,organization,HQ\n",
            ),
        ],
    );
    import_paths(dir, backend, &paths);
    (d3.to_string(), d10.to_string())
}

/// Page 1 and page 2 of the list at `path` (table `table`): 50 rows, then the rest; each of
/// `names` on exactly one row of the two; page 2's rows in `order` after page 1's.
pub fn pages_hold(
    (http, url, session): (&Client, &str, &str),
    (path, table): (&str, &str),
    names: &[String],
    total: usize,
) -> (Vec<String>, Vec<String>) {
    let join = if path.contains('?') { '&' } else { '?' };
    let one = get(http, url, session, path).text().unwrap();
    let two = get(http, url, session, &format!("{path}{join}page=2"))
        .text()
        .unwrap();
    let (first, second) = (rows_of(&one, table), rows_of(&two, table));
    assert_eq!(first.len(), 50, "{path}: {first:?}");
    assert_eq!(second.len(), total - 50, "{path}: {second:?}");
    assert!(
        one.contains(&format!("Page 1 of 2 · {total} rows")),
        "{path}"
    );
    assert!(
        two.contains("rel=\"prev\"") && !two.contains("rel=\"next\""),
        "{path}"
    );
    for name in names {
        let holding = first
            .iter()
            .chain(&second)
            .filter(|r| r.contains(name.as_str()));
        assert_eq!(holding.count(), 1, "{path}: {name}");
    }
    (first, second)
}
