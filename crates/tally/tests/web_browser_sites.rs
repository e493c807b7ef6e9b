//! A parent's console narrowed to one child site (`?site=`) in a real headless Chromium: at a
//! centre (real `tally server` processes on SQLite, as `hierarchy.rs` starts them) with a
//! computer of its own and one at its child P01 that synced up, both with Code installed, the
//! applications list counts both; the Site list in its filters, chosen and applied, narrows the
//! list to P01's one and says so; "Show all sites" brings back both. The narrowed page is saved
//! as target/web-screenshots/w4-applications-site.png.

mod common;
mod web;

use common::hierarchy::{inventory, Node};
use common::{poll_until, Backend};
use web::browser::Browser;

#[test]
fn a_parent_narrows_the_applications_to_a_child_site_in_chromium() {
    if !web::browser::available() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let cen = Node::start(root.path(), "CEN", Backend::Sqlite, None);
    let p01 = cen.child(root.path(), "P01");
    let app = ["apps", "add", "Code", "--metric", "installations"];
    cen.json(&[&app[..], &["--software", "code"]].concat());
    for (node, host) in [(&cen, "cen-pc"), (&p01, "p01-pc")] {
        let creds = node.enrol(host, host);
        node.agent(&creds, "inventory", Some(inventory(&["code"])));
    }
    let synced = |d: &Vec<serde_json::Value>| d.len() == 2 && d.iter().all(|d| d["cores"] == 8);
    let devices = poll_until(|| cen.devices(), synced);
    assert!(
        synced(&devices),
        "P01's computer at the centre: {devices:?}"
    );

    let url = cen.url();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let b = Browser::start().await;
        b.sign_in(&url, &cen.token).await;
        b.open(&url, "/applications").await;
        assert_eq!(required(&b).await, "2", "both computers");
        assert!(!b.exists("#site-scope").await, "not narrowed");
        b.choose("#site", "P01").await;
        b.click("form.filters button[type=submit]").await;
        b.wait_text("#site-scope", "Narrowed to site P01").await;
        assert!(b.path().await.contains("site=P01"), "{}", b.path().await);
        assert_eq!(required(&b).await, "1", "P01's computer only");
        b.shot("w4-applications-site").await;
        b.click("#site-scope-all").await;
        b.wait_path("/applications").await;
        assert_eq!(required(&b).await, "2", "both computers again");
        assert!(!b.exists("#site-scope").await, "not narrowed");
    });
}

/// The Required cell of Code's row in the applications list open in `b`.
async fn required(b: &Browser) -> String {
    let page = b.c().source().await.unwrap();
    web::cells_of(&page, "applications", "Code")[2].clone()
}
