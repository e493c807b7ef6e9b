//! The console by keyboard alone in a real headless Chromium against a real `tally server` on
//! SQLite: sign in, go to the licenses, open the form and add a license with only Tab, Enter
//! and typing, the focus order of each step recorded by the name a screen reader would say
//! (a control's label, a link's or button's text) and checked against the order a person
//! reads the page in. Then the pages this work added, each saved as a screenshot: an
//! application's concurrency chart, a metering rule's form with a refusal, the placement
//! rules, a computer's placement and a list's second page.

mod common;
mod web;

use common::{Backend, Running};
use fantoccini::key::Key;
use web::browser::Browser;

/// The accessible name of the focused element: its label, else its own text or value.
const FOCUSED: &str = r#"
    const e = document.activeElement;
    if (!e || e === document.body) return "";
    const label = e.id && document.querySelector(`label[for="${e.id}"]`);
    const name = label ? label.innerText : (e.getAttribute("aria-label") || e.innerText || e.value || e.tagName);
    return name.trim();
"#;

async fn focused(b: &Browser) -> String {
    let name = b.c().execute(FOCUSED, vec![]).await.unwrap();
    name.as_str().unwrap_or_default().to_string()
}

/// Sends `keys` to the focused element (the page when none).
async fn press(b: &Browser, keys: &str) {
    let on = b.c().active_element().await.unwrap();
    on.send_keys(keys).await.unwrap();
}

fn tab() -> String {
    char::from(Key::Tab).to_string()
}

fn enter() -> String {
    char::from(Key::Enter).to_string()
}

/// Presses Tab until the focus is on `name` (at most 80 times); the names passed on the way,
/// each once (a date field takes a Tab per part), `name` last.
async fn tab_to(b: &Browser, name: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..80 {
        press(b, &tab()).await;
        let now = focused(b).await;
        if seen.last() != Some(&now) {
            seen.push(now.clone());
        }
        if now == name {
            return seen;
        }
    }
    panic!("Tab never reached {name:?}: {seen:?}");
}

#[test]
fn a_license_added_by_keyboard_alone_and_the_new_pages_in_chromium() {
    if !web::browser::available() {
        return;
    }
    let (dir, server) = web::estate_server(&Backend::Sqlite);
    web::import_viewer(dir.path(), &Backend::Sqlite);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = Browser::start().await;
        keyboard_journey(&browser, &server).await;
        new_pages(&browser, &server).await;
    });
}

async fn keyboard_journey(b: &Browser, server: &Running) {
    let url = &server.url;
    b.signed_out(url).await;
    assert_eq!(b.path().await, "/sign-in");
    // The token field is the first stop; Enter in it signs in.
    assert_eq!(tab_to(b, "Operator token").await, ["Operator token"]);
    press(b, &format!("{}{}", server.token, enter())).await;
    b.wait_text("#operator", "admin").await;
    assert_eq!(b.path().await, "/");

    // The brand, then the main navigation in its order, to Licenses; Enter follows it.
    let way = tab_to(b, "Licenses").await;
    assert_eq!(
        way,
        [
            "Skip to the content",
            "Tally",
            "Dashboard",
            "Applications",
            "Licenses"
        ]
    );
    press(b, &enter()).await;
    b.wait_text("h1", "Licenses").await;
    tab_to(b, "Add a license").await;
    press(b, &enter()).await;
    b.wait_text("h1", "Add a license").await;

    // The first stop skips the navigation; then the form's controls in reading order, each
    // reached and named by its label.
    assert_eq!(
        tab_to(b, "Skip to the content").await,
        ["Skip to the content"]
    );
    press(b, &enter()).await;
    let order = tab_to(b, "Save license").await;
    assert_eq!(
        order[0], "← All licenses",
        "the navigation skipped: {order:?}"
    );
    let fields = [
        "Application",
        "Metric",
        "Quantity",
        "Assigned as",
        "Assigned to (name; empty for the whole organisation)",
        "Purchased",
        "Valid from",
        "Valid until",
        "Maintenance until",
        "Unit cost (e.g. 129.90)",
        "Currency (e.g. EUR)",
        "Vendor",
        "Order reference",
        "Notes",
        "Save license",
    ];
    let from = order.iter().position(|n| n == "Application").unwrap();
    assert_eq!(order[from..], fields, "{order:?}");

    // Filled by typing: a list takes the first letters of its choice.
    b.c().refresh().await.unwrap();
    b.wait_text("h1", "Add a license").await;
    tab_to(b, "Application").await;
    press(b, "Office").await;
    press(b, &tab()).await;
    press(b, "installations").await;
    press(b, &format!("{}1{}", tab(), tab())).await;
    press(b, "organization").await;
    press(b, &format!("{}HQ", tab())).await;
    assert_eq!(focused(b).await, fields[4]);
    let typed = "return [application.value, metric.value, quantity.value, assignment_type.value, assigned_to.value]";
    let values = b.c().execute(typed, vec![]).await.unwrap();
    assert_eq!(
        values,
        serde_json::json!(["Office", "installations", "1", "organization", "HQ"])
    );
    b.shot("w3-keyboard-license-form").await;
    tab_to(b, "Save license").await;
    press(b, &enter()).await;
    b.wait_text("h1", "Office as of").await;
    assert_eq!(b.text("#owned").await, "2", "the license counts");
    assert_eq!(b.text("#shortfall").await, "0");
    b.shot("w3-keyboard-license-saved").await;
}

async fn new_pages(b: &Browser, server: &Running) {
    let url = &server.url;
    // The concurrency chart, reached from the application's page.
    b.open(url, "/applications/Viewer").await;
    b.click("#concurrency-link").await;
    b.wait_text("#metering-peak", "3").await;
    assert_eq!(b.path().await, "/applications/Viewer/concurrency");
    let chart = b.text("#concurrency-chart").await;
    assert!(chart.contains("Peak concurrent users per day"), "{chart}");
    b.shot("w3-concurrency").await;
    b.choose("#per", "month").await;
    b.click("form.filters button").await;
    b.wait_text("#concurrency", "Month").await;
    let path = b.path().await;
    assert!(
        path.starts_with("/applications/Viewer/concurrency?") && path.ends_with("per=month"),
        "{path}"
    );

    // A metering rule added, then edited with a refusal shown beside its field.
    b.open(url, "/rules").await;
    b.fill("#name", "Editor").await;
    b.fill("#file_name", "vim").await;
    b.click("#rule-form button").await;
    b.wait_text("#rules", "Editor").await;
    b.click("#rules tbody a").await;
    b.wait_text("h1", "Metering rule Editor").await;
    b.fill("#file_name", "v*m").await;
    b.click("#rule-edit button").await;
    let refusal = b.text("#file_name-error").await;
    assert!(refusal.contains("may not contain wildcards"), "{refusal}");
    b.shot("w3-rule-edit-refused").await;
    b.fill("#file_name", "nvim").await;
    b.fill("#product_name", "Neovim").await;
    b.click("#rule-edit button").await;
    b.wait_text("#rules", "nvim").await;

    // A placement rule added on the org tree; pc2 placed on Sales from its page.
    b.open(url, "/org").await;
    b.choose("#rule-org_node", "Sales").await;
    b.fill("#rule-host_name", "lab-*").await;
    b.click("#org-rule-form button").await;
    b.wait_text("#org-rules", "lab-*").await;
    b.shot("w3-org-rules").await;
    b.open(url, "/devices?q=pc2").await;
    b.click("#devices tbody a").await;
    b.choose("#org_node", "Sales").await;
    b.click("#place-form button").await;
    b.wait_text("main", "Sales").await;
    let chosen = "return document.querySelector('#org_node').value";
    let now = b.c().execute(chosen, vec![]).await.unwrap();
    assert_eq!(now, "Sales");
    b.shot("w3-device-placed").await;
}
