//! The console's estate, import, reports and administration pages in a real headless Chromium
//! against a real `tally server` on SQLite: an import with an error shown by file and line
//! (nothing written), then a good one checked and loaded; a report run and its PDF downloaded
//! and read back with pdftotext; an operator token created with its secret shown once (and the
//! secret working); a device's page; the org tree, users, tasks and the audit log; and the
//! auditor shown no administration control. Screenshots `w2-*.png` in target/web-screenshots/.

mod common;
mod web;

use std::process::Command;

use common::{Backend, Running};
use fantoccini::Locator;
use reqwest::header::COOKIE;
use web::browser::Browser;

#[test]
fn estate_import_reports_and_administration_in_chromium() {
    if !(web::browser::available()
        && common::needs_poppler("the web console's report download test"))
    {
        return;
    }
    let (dir, server) = web::estate_server(&Backend::Sqlite);
    let auditor = web::auditor_token(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let b = Browser::start().await;
        b.sign_in(&server.url, &server.token).await;
        import(&b, &server, dir.path()).await;
        report(&b, &server, dir.path()).await;
        token(&b, &server).await;
        estate(&b, &server).await;
        auditor_view(&b, &server, &auditor).await;
    });
}

/// Runs `f` (a blocking HTTP call, which may not run inside the async steps) on a thread of
/// its own.
fn off<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

/// The host names the API lists, read with a blocking client outside the async steps.
fn hosts(server: &Running) -> Vec<String> {
    off(|| web::host_names(server))
}

/// Chooses `paths` in the import form's file field and checks them.
async fn upload(b: &Browser, url: &str, paths: &[String]) {
    b.open(url, "/import").await;
    let field = b.c().find(Locator::Css("#files")).await.unwrap();
    field.send_keys(&paths.join("\n")).await.unwrap();
    b.click("#import-form button[type=submit]").await;
}

async fn import(b: &Browser, server: &Running, dir: &std::path::Path) {
    let url = &server.url;
    // Line 3 of devices.csv has a status Tally does not know: shown by file, line and field.
    let bad = web::files(
        dir,
        "bad",
        &[(
            "devices.csv",
            "host_name,org_node,status\npc4,Sales,active\npc5,HQ,broken\n",
        )],
    );
    upload(b, url, &bad).await;
    let said = b.text("#import-refused").await;
    assert!(said.contains("nothing was written"), "{said}");
    let row = b.text("#problems tbody tr").await;
    assert!(row.starts_with("devices.csv 3 status"), "{row}");
    b.shot("w2-import-refused").await;
    assert!(!hosts(server).contains(&"pc4".to_string()));

    let good = web::files(
        dir,
        "good",
        &[
            (
                "devices.csv",
                "host_name,org_node,status\npc4,Sales,active\n",
            ),
            ("users.csv", "account,full_name\nbob,Bob Jones\n"),
        ],
    );
    upload(b, url, &good).await;
    let checked = b.text("#import-checked").await;
    assert!(
        checked.contains("2 rows") && checked.contains("no problems"),
        "{checked}"
    );
    assert!(
        !hosts(server).contains(&"pc4".to_string()),
        "a check writes nothing"
    );
    b.shot("w2-import-checked").await;
    b.click("#load-form button").await;
    let done = b.text("#import-done").await;
    assert_eq!(done, "Imported 1 device and 1 user.");
    assert!(hosts(server).contains(&"pc4".to_string()));
    b.shot("w2-import-done").await;
}

/// The session cookie the browser holds, for fetching what a link points at.
async fn session(b: &Browser) -> String {
    let cookie = b.c().get_named_cookie("tally_session").await.unwrap();
    cookie.value().to_string()
}

async fn report(b: &Browser, server: &Running, dir: &std::path::Path) {
    let url = &server.url;
    b.open(url, "/reports").await;
    assert!(b.text("#catalogue").await.contains("Installed but unused"));
    b.shot("w2-reports").await;
    b.click("#catalogue a[href='/reports/reclaim']").await;
    b.fill("#report-form input[name=days]", "90").await;
    b.click("#report-form button").await;
    let table = b.text("#report-table").await;
    assert!(table.contains("pc1") && table.contains("Office"), "{table}");
    b.shot("w2-report").await;

    // The PDF link, fetched with the browser's session, is a PDF holding the same rows.
    let link = b.c().find(Locator::Css("#download-pdf")).await.unwrap();
    let href = link.attr("href").await.unwrap().unwrap();
    assert!(
        href.starts_with("/reports/reclaim/download?") && href.contains("format=pdf"),
        "{href}"
    );
    let cookie = format!("tally_session={}", session(b).await);
    let (status, kind, disposition, bytes) = off(|| {
        let answer = web::client()
            .get(format!("{url}{href}"))
            .header(COOKIE, cookie)
            .send()
            .unwrap();
        let header = |name: &str| answer.headers()[name].to_str().unwrap().to_string();
        let (kind, disposition) = (header("content-type"), header("content-disposition"));
        (answer.status(), kind, disposition, answer.bytes().unwrap())
    });
    assert_eq!(status, 200);
    assert_eq!(kind, "application/pdf");
    assert!(disposition.contains("reclaim.pdf"), "{disposition}");
    let pdf = dir.join("reclaim.pdf");
    std::fs::write(&pdf, bytes).unwrap();
    let text = Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(text.status.success(), "pdftotext reads it");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("pc1") && text.contains("Office"), "{text}");
}

async fn token(b: &Browser, server: &Running) {
    let url = &server.url;
    b.open(url, "/admin/tokens").await;
    b.fill("#name", "ci-bot").await;
    b.choose("#role", "auditor").await;
    b.click("#token-form button").await;
    let secret = b.text("#secret").await;
    assert!(
        secret.starts_with("tally_") && secret.len() == 70,
        "{secret}"
    );
    b.shot("w2-token-created").await;
    let me: serde_json::Value = off(|| {
        let whoami = web::client().get(format!("{url}/api/v1/whoami"));
        whoami.bearer_auth(&secret).send().unwrap().json().unwrap()
    });
    assert_eq!(me["name"], "ci-bot", "the secret shown is the token");
    // Shown once: the list names the token and never shows its secret again.
    b.open(url, "/admin/tokens").await;
    let list = b.text("#tokens").await;
    assert!(list.contains("ci-bot") && !b.body().await.contains(&secret));
    b.shot("w2-tokens").await;
}

async fn estate(b: &Browser, server: &Running) {
    let url = &server.url;
    b.open(url, "/devices?status=active").await;
    let rows = b.text("#devices tbody").await;
    assert!(
        rows.contains("pc1") && !rows.contains("pc3"),
        "retired pc3 filtered out: {rows}"
    );
    b.shot("w2-devices").await;
    b.click("#devices tbody a").await;
    assert_eq!(b.wait_text("h1", "pc1").await, "pc1");
    let hardware = b.text("#hardware").await;
    assert!(
        hardware.contains("Sales") && hardware.contains("active"),
        "{hardware}"
    );
    let software = b.text("#software tbody").await;
    assert!(
        software.contains("office-suite 16") && software.contains("still installed"),
        "{software}"
    );
    assert!(
        b.text("#last-used").await.contains("Office"),
        "what was used here"
    );
    b.shot("w2-device").await;

    // On a tablet the same page fits its width: nothing scrolls sideways.
    b.c().set_window_size(820, 1180).await.unwrap();
    let wide: bool = b
        .c()
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap();
    b.shot("w2-device-tablet").await;
    assert!(!wide, "the device page fits a tablet");
    b.shot("w2-device-tablet").await;
    b.c().set_window_size(1280, 900).await.unwrap();

    b.open(url, "/users").await;
    assert!(b.text("#users").await.contains("Ann Smith"));
    b.shot("w2-users").await;
    b.open(url, "/org").await;
    assert!(b.text("#org-tree").await.contains("Sales"));
    // Sales moves to the top, then back under HQ; a cycle is refused on the page.
    b.choose("#node", "HQ").await;
    b.choose("#parent", "Sales").await;
    b.click("#move-form button").await;
    let refused = b.text("p.error").await;
    assert!(refused.starts_with("HQ cannot move"), "{refused}");
    b.shot("w2-org").await;

    // A metering rule added through the form, then switched off.
    b.open(url, "/rules").await;
    b.fill("#rule-form #name", "Editor").await;
    b.fill("#rule-form #file_name", "vim").await;
    b.click("#rule-form button").await;
    let row = b.wait_text("#rules tbody tr", "Editor").await;
    assert!(row.contains("vim") && row.contains("on"), "{row}");
    b.click("#rules tbody form.inline button").await;
    // The answer replaces the page: wait for the new row rather than read the old one.
    let row = b.wait_text("#rules tbody tr", "Switch on").await;
    assert!(row.contains("off"), "{row}");
    b.shot("w2-rules").await;
    b.open(url, "/programs").await;
    b.text("#programs").await;
    b.shot("w2-programs").await;

    b.open(url, "/admin/tasks").await;
    let tasks = b.text("#tasks").await;
    assert!(
        tasks.contains("summarize_monthly_usage") && tasks.contains("write_reports"),
        "{tasks}"
    );
    b.shot("w2-tasks").await;
    b.open(url, "/admin/audit?action=token.create").await;
    let log = b.text("#audit tbody").await;
    assert!(
        log.contains("token.create") && !log.contains("web.sign_in"),
        "{log}"
    );
    b.shot("w2-audit").await;
}

async fn auditor_view(b: &Browser, server: &Running, auditor: &str) {
    let url = &server.url;
    b.sign_in(url, auditor).await;
    for (page, control) in [
        ("/admin/tokens", "#token-form"),
        ("/admin/enrolment", "#enrolment-form"),
        ("/import", "#import-form"),
        ("/org", "#move-form"),
        ("/rules", "#rule-form"),
        ("/devices", "form.inline"),
        ("/admin/tasks", "form.inline"),
    ] {
        b.open(url, page).await;
        b.text("h1").await;
        assert!(
            !b.exists(control).await,
            "the auditor is shown no {control} on {page}"
        );
    }
    b.open(url, "/admin/tokens").await;
    assert!(b.text("p.read-only").await.contains("Read-only"));
    b.shot("w2-admin-auditor").await;
}
