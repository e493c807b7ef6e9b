//! The reclaim campaign and the dashboard's trend in a real headless Chromium against a real
//! `tally server` on SQLite: the dashboard's trend charts (from a compliance snapshot) and its
//! expiring licenses; the reclaim filters picked on the page and kept in the URL; an
//! installation proposed, confirmed and marked removed, with the totals per state; the CSV the
//! page's export link downloads; the auditor shown the campaign without a control. Screenshots
//! go to target/web-screenshots/, named `w1-*`.

mod common;
mod web;

use common::{tally, Backend, Running};
use web::browser::Browser;

/// Takes today's compliance snapshot of the imported estate; the server's scheduler may be
/// running the task already (it starts with the server), so a refusal for that is retried.
fn snapshot_now(server: &Running) {
    for _ in 0..100 {
        let run = tally(
            server,
            &server.token,
            &["tasks", "run", "snapshot_compliance"],
        );
        let said = String::from_utf8_lossy(&run.stderr).to_string();
        match run.status.success() {
            true => return,
            false if said.contains("running already") => {
                std::thread::sleep(std::time::Duration::from_millis(200))
            }
            false => panic!("{said}"),
        }
    }
    panic!("the snapshot task never became free");
}

#[test]
fn the_reclaim_campaign_in_chromium() {
    if !web::browser::available() {
        return;
    }
    let (_dir, server) = web::estate_server(&Backend::Sqlite);
    snapshot_now(&server);
    let auditor = web::auditor_token(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = Browser::start().await;
        dashboard(&browser, &server).await;
        application_usage(&browser, &server).await;
        campaign(&browser, &server).await;
        auditor_view(&browser, &server, &auditor).await;
    });
}

async fn dashboard(b: &Browser, server: &Running) {
    b.sign_in(&server.url, &server.token).await;
    // Today's snapshot: Office under-licensed, one installation short at 99.50 EUR.
    let trend = b.text("#trend").await;
    assert!(trend.contains("Applications under-licensed"), "{trend}");
    assert!(trend.contains("Shortfall cost (EUR)"), "{trend}");
    // The figures are the SVG's own text, as the reports draw it.
    let script = "return document.querySelector('#trend').textContent;";
    let drawn = b.c().execute(script, vec![]).await.unwrap();
    assert!(drawn.as_str().unwrap().contains("99.50"), "{drawn}");
    assert!(
        b.exists("#trend a.chart[href='/applications?status=under_licensed'] svg")
            .await
    );
    let ending = b.text("#expiring").await;
    assert!(ending.contains("maintenance"), "{ending}");
    let agents = b.text("#agents").await;
    assert!(agents.contains("0\nagents silent"), "{agents}");
    b.shot("w1-dashboard").await;
    let scroll = "document.querySelector('#trend-heading').scrollIntoView();";
    b.c().execute(scroll, vec![]).await.unwrap();
    b.shot("w1-dashboard-trend").await;
    b.click("#trend a.chart[href='/applications?status=under_licensed']")
        .await;
    b.wait_path("/applications?status=under_licensed").await;
}

/// Office's page: an hour of use 200 days ago in the usage chart, its recognition rule, and
/// the same page as of a day before that use, when the chart holds none.
async fn application_usage(b: &Browser, server: &Running) {
    let url = &server.url;
    b.open(url, "/applications/Office").await;
    assert!(b.text("#recognition").await.contains("office*"));
    let used = (chrono::Utc::now() - chrono::Duration::days(200))
        .format("%Y-%m")
        .to_string();
    let script = "return document.querySelector('#usage').textContent;";
    let drawn = b.c().execute(script, vec![]).await.unwrap();
    let drawn = drawn.as_str().unwrap().to_string();
    assert!(drawn.contains("Hours of use by month"), "{drawn}");
    assert!(
        drawn.contains(&format!("{used}: 1 h 00 min")),
        "one hour in {used}: {drawn}"
    );
    let scroll = "document.querySelector('#usage-heading').scrollIntoView();";
    b.c().execute(scroll, vec![]).await.unwrap();
    b.shot("w1-application-usage").await;
    let before = chrono::Utc::now().date_naive() - chrono::Duration::days(201);
    b.open(url, &format!("/applications/Office?as_of={before}"))
        .await;
    assert!(b.text("h1").await.ends_with(&format!("as of {before}")));
    let drawn = b.c().execute(script, vec![]).await.unwrap();
    assert!(!drawn.as_str().unwrap().contains("1 h"), "{drawn}");
}

async fn campaign(b: &Browser, server: &Running) {
    b.open(&server.url, "/reclaim").await;
    b.fill("#days", "90").await;
    b.choose("#org_node", "Sales").await;
    b.choose("#application", "Office").await;
    b.click("form.filters button[type=submit]").await;
    b.wait_path("/reclaim?days=90&org_node=Sales&application=Office")
        .await;
    let rows = b.text("#reclaim tbody").await;
    assert!(rows.contains("pc1") && !rows.contains("pc2"), "{rows}");
    b.shot("w1-reclaim-filtered").await;

    // The export link downloads the filtered list, with the browser's own session.
    let href = b
        .c()
        .find(fantoccini::Locator::Css("#export-csv"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        href,
        "/reclaim.csv?days=90&application=Office&org_node=Sales"
    );
    let fetch = "const [href, done] = arguments; fetch(href).then(r => r.text()).then(done);";
    let args = vec![serde_json::json!(href)];
    let csv = b.c().execute_async(fetch, args).await.unwrap();
    let csv = csv.as_str().unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("application,computer,"), "{csv}");
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[1].starts_with("Office,pc1,") && lines[1].contains(",99.50,EUR,"),
        "{csv}"
    );

    // Proposed, confirmed, removed: the totals follow, and the filters stay.
    b.click("#reclaim button.propose").await;
    b.wait_path("/reclaim?days=90&application=Office&org_node=Sales")
        .await;
    b.wait_text("#total-proposed", "99.50 EUR").await;
    b.click("#campaign button.step").await;
    b.wait_text("#total-confirmed", "99.50 EUR").await;
    b.click("#campaign button.step").await;
    let removed = b.wait_text("#total-removed", "99.50 EUR").await;
    assert!(
        removed.contains("1") && removed.contains("99.50 EUR"),
        "{removed}"
    );
    assert!(!b.text("#total-proposed").await.contains("EUR"));
    let item = b.text("#campaign tbody").await;
    assert!(item.contains("pc1") && item.contains("removed"), "{item}");
    b.shot("w1-reclaim-campaign").await;
}

async fn auditor_view(b: &Browser, server: &Running, auditor: &str) {
    b.sign_in(&server.url, auditor).await;
    b.open(&server.url, "/reclaim").await;
    assert!(b.text("#campaign tbody").await.contains("removed"));
    for control in ["button.propose", "button.step"] {
        assert!(
            !b.exists(control).await,
            "the auditor is shown no {control}"
        );
    }
    b.shot("w1-reclaim-auditor").await;
}
