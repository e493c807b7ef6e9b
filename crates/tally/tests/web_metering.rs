//! The console's system-metering page (seed 003) against a real `tally server`, on SQLite and
//! on PostgreSQL: the figures as the report gives them, the report written on demand by an
//! admin with the session's CSRF token (its three files listed), and refused without the token
//! or to the auditor, who sees no control.

mod common;
mod web;

use common::Backend;
use web::{auditor_token, client, csrf_of, get, post, rows_of, sign_in, value};

each_backend!(the_console_shows_and_writes_the_system_metering_report);

/// The figure beside `label` in the page's summary section.
fn figure(page: &str, label: &str) -> i64 {
    let rows = rows_of(page, "metering-0");
    let row = rows.iter().find(|r| r.starts_with(label));
    let row = row.unwrap_or_else(|| panic!("no {label} in {rows:?}"));
    row[label.len()..].trim().parse().unwrap()
}

fn the_console_shows_and_writes_the_system_metering_report(backend: Backend) {
    let (_dir, server) = web::estate_server(&backend);
    let (http, url) = (client(), server.url.clone());
    let admin = value(&sign_in(&http, &url, &server.token));
    let page = get(&http, &url, &admin, "/admin/metering").text().unwrap();
    assert!(page.contains("Write the report now"), "{page}");
    // pc1 and pc2 are active, pc3 is retired (an irrelevant status).
    let devices = figure(&page, "Devices in relevant statuses");
    assert_eq!(devices, 2);

    // Without the session's CSRF token: refused.
    let refused = post(&http, &url, &admin, "/admin/metering/run", &[]);
    assert_eq!(refused.status(), 403);

    // With it: written, and the page lists the three files.
    let csrf = csrf_of(&page);
    let http_no_redirect = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The scheduler writes one at the start: while it does, a run is refused as running (409).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let done = loop {
        let form = [("csrf", csrf.as_str())];
        let done = post(
            &http_no_redirect,
            &url,
            &admin,
            "/admin/metering/run",
            &form,
        );
        if done.status() != 409 || std::time::Instant::now() > deadline {
            break done;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(done.status(), 303);
    let to = done.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/admin/metering?written="), "{to}");
    let after = get(&http, &url, &admin, &to).text().unwrap();
    let written = web::text_of(&after, "written");
    for ext in ["dat", "html", "pdf"] {
        let file = format!("System_Metering_Report.{ext}");
        assert!(written.contains(&file), "{file} in {written}");
    }
    let bad = get(&http, &url, &admin, "/admin/metering?written=yesterday");
    assert_eq!(bad.status(), 400);

    // The auditor reads the figures, sees no control, and is refused a forged run.
    let auditor = value(&sign_in(&http, &url, &auditor_token(&server)));
    let page = get(&http, &url, &auditor, "/admin/metering")
        .text()
        .unwrap();
    assert!(!page.contains("Write the report now"));
    assert_eq!(figure(&page, "Devices in relevant statuses"), devices);
    let forged = [("csrf", csrf_of(&page))];
    let forged: Vec<(&str, &str)> = forged.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = post(&http, &url, &auditor, "/admin/metering/run", &forged);
    assert_eq!(refused.status(), 403);
}
