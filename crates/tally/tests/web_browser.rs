//! The web console in a real headless Chromium (Debian's `chromium` driven through
//! `chromedriver` over WebDriver) against a real `tally server` on SQLite: sign in, read the
//! dashboard, follow a figure to its list, add a license through the form and see the position
//! change, a seed-002 refusal shown on the form, an application's page at a past date, the
//! auditor shown no write control and refused a forged POST, and a POST without the CSRF token
//! refused. Each page is saved as a screenshot in target/web-screenshots/.

mod common;
mod web;

use common::{Backend, Running};
use fantoccini::Locator;
use web::browser::Browser;

/// Posts a form made up in the page (as a forger would), with the page's CSRF token when
/// `with_csrf`; the answer's text.
async fn forge(b: &Browser, action: &str, with_csrf: bool) -> String {
    let script = r#"
        const [action, withCsrf] = arguments;
        const form = document.createElement("form");
        form.method = "post";
        form.action = action;
        const add = (name, value) => {
            const input = document.createElement("input");
            input.type = "hidden"; input.name = name; input.value = value;
            form.appendChild(input);
        };
        if (withCsrf) add("csrf", document.querySelector("input[name=csrf]").value);
        add("application", "Office"); add("metric", "installations");
        add("quantity", "500"); add("assignment_type", "organization");
        document.body.appendChild(form);
        form.submit();
    "#;
    let args = vec![serde_json::json!(action), serde_json::json!(with_csrf)];
    b.c().execute(script, args).await.unwrap();
    b.text("p.error").await
}

#[test]
fn the_console_in_chromium() {
    if !web::browser::available() {
        return;
    }
    let (_dir, server) = web::estate_server(&Backend::Sqlite);
    let auditor = web::auditor_token(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = Browser::start().await;
        admin_journey(&browser, &server).await;
        auditor_journey(&browser, &server, &auditor).await;
    });
}

async fn admin_journey(b: &Browser, server: &Running) {
    let url = &server.url;
    b.open(url, "/").await;
    b.shot("sign-in").await;
    b.sign_in(url, &server.token).await;

    // The dashboard: Office is one installation short, at the Sales license's price.
    assert_eq!(b.path().await, "/");
    let tiles = b.text("section.tiles").await;
    assert!(tiles.contains("1\napplications under-licensed"), "{tiles}");
    assert!(
        tiles.contains("99.50 EUR\nto buy to cover the shortfall"),
        "{tiles}"
    );
    assert!(tiles.contains("1\nlicense and maintenance ends"), "{tiles}");
    b.shot("dashboard").await;

    // Each figure is a link to the list behind it.
    b.click("a.tile[href='/reclaim?days=90']").await;
    let idle = b.text("#reclaim tbody").await;
    assert!(idle.contains("pc1") && idle.contains("99.50 EUR"), "{idle}");
    b.shot("reclaim").await;
    b.c().back().await.unwrap();
    b.click("a.tile[href='/applications?status=under_licensed']")
        .await;
    let rows = b.text("#applications tbody").await;
    assert!(rows.contains("Office") && !rows.contains("Chat"), "{rows}");
    b.shot("applications").await;
    b.click("#applications tbody a").await;
    assert_eq!(b.text("#owned").await, "1");
    assert_eq!(b.text("#shortfall").await, "1");
    assert!(
        b.text("#uncovered").await.contains("pc2"),
        "uncovered by name"
    );
    assert!(
        b.text("#excluded").await.contains("pc3"),
        "excluded with its reason"
    );
    b.shot("application").await;

    // A license through the form: the position changes.
    let today = chrono::Utc::now().date_naive();
    b.open(url, "/licenses").await;
    b.shot("licenses").await;
    b.click("#add-license").await;
    b.choose("#application", "Office").await;
    b.choose("#metric", "installations").await;
    b.fill("#quantity", "1").await;
    b.choose("#assignment_type", "organization").await;
    b.fill("#assigned_to", "HQ").await;
    b.set_value("#valid_from", &today.to_string()).await;
    b.fill("#unit_cost", "99.50").await;
    b.fill("#currency", "EUR").await;
    b.shot("license-form").await;
    b.click("form.license button[type=submit]").await;
    assert_eq!(b.text("#owned").await, "2", "the new license counts");
    assert_eq!(b.text("#shortfall").await, "0");
    assert_eq!(b.path().await, "/applications/Office");
    b.shot("application-after").await;

    // The day before, the license was not valid yet: the position then is as it was.
    let yesterday = today - chrono::Duration::days(1);
    b.open(url, &format!("/applications/Office?as_of={yesterday}"))
        .await;
    assert!(b.text("h1").await.ends_with(&format!("as of {yesterday}")));
    assert_eq!(b.text("#owned").await, "1");
    assert_eq!(b.text("#shortfall").await, "1");
    b.shot("application-past").await;

    // Seed 002: Chat is measured in users, so an installations license is refused, on the form.
    b.open(url, "/licenses/new").await;
    b.choose("#application", "Chat").await;
    b.choose("#metric", "installations").await;
    b.fill("#quantity", "5").await;
    b.choose("#assignment_type", "organization").await;
    b.click("form.license button[type=submit]").await;
    let refusal = b.text("#metric-error").await;
    assert!(refusal.contains("accepts licenses of: users"), "{refusal}");
    assert_eq!(b.path().await, "/licenses", "still the form");
    b.shot("license-refused").await;
    // The form offers only the assignment types seed 002 allows for the metric.
    b.choose("#metric", "processor_cores").await;
    let disabled = b
        .c()
        .find(Locator::Css("#assignment_type option[value=organization]"))
        .await
        .unwrap();
    assert_eq!(
        disabled.prop("disabled").await.unwrap().as_deref(),
        Some("true")
    );

    // A POST without the CSRF token changes nothing.
    let before = web::licenses(server).len();
    let said = forge(b, "/licenses", false).await;
    assert!(said.contains("CSRF token is missing or wrong"), "{said}");
    assert_eq!(web::licenses(server).len(), before);
    b.shot("csrf-refused").await;
}

async fn auditor_journey(b: &Browser, server: &Running, auditor: &str) {
    let url = &server.url;
    b.sign_in(url, auditor).await;
    assert!(b.text("#operator").await.contains("auditor"));
    b.open(url, "/licenses").await;
    let page = b.body().await;
    assert!(page.contains("Office"), "{page}");
    for control in ["#add-license", "form.inline", "button.danger"] {
        assert!(
            !b.exists(control).await,
            "the auditor is shown no {control}"
        );
    }
    b.click("#license-list tbody a").await;
    assert!(!b.exists("form.license").await && b.exists("#license-terms").await);
    b.shot("license-auditor").await;

    // A forged POST with the auditor's own valid CSRF token is refused by the server.
    let before = web::licenses(server);
    let said = forge(b, "/licenses", true).await;
    assert!(said.contains("read-only"), "{said}");
    assert_eq!(web::licenses(server), before);
    b.shot("auditor-refused").await;
}
