//! A headless Chromium (Debian's `chromium`, driven through `chromedriver` over WebDriver) for
//! the console's browser tests, with the few steps they share: sign in, fill, pick, click, read,
//! and save a screenshot in target/web-screenshots/.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::common::free_port;

/// chromedriver and the browser session it drives; dropping it stops chromedriver.
pub struct Browser {
    driver: Child,
    client: Option<Client>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Whether headless Chromium and chromedriver are installed (see `common::needs`).
pub fn available() -> bool {
    let tools = [
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
    ];
    crate::common::needs::group("the web console's browser tests", false, &tools)
}

impl Browser {
    pub async fn start() -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (.ci/run installs chromium-driver)");
        let mut browser = Browser {
            driver,
            client: None,
        };
        let mut caps = serde_json::Map::new();
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ];
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "args": args }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    panic!("no WebDriver session: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        browser.client = Some(client);
        browser
    }

    pub fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Opens `path` (from its `/`) of the console at `url`.
    pub async fn open(&self, url: &str, path: &str) {
        self.c().goto(&format!("{url}{path}")).await.unwrap();
    }

    /// Opens the console at `url` without a session: `/` then shows the sign-in page.
    pub async fn signed_out(&self, url: &str) {
        // Cookies are deleted for the page's site, so open one of its pages first.
        self.open(url, "/sign-in").await;
        self.c().delete_all_cookies().await.unwrap();
        self.open(url, "/").await;
    }

    /// Saves the page as target/web-screenshots/NAME.png.
    pub async fn shot(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/web-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.c().screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        let found = self
            .c()
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await;
        found
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// Waits (up to 20 s) for the text of `css` to hold `needle`; the text. Read by script,
    /// so a page being replaced meanwhile (after a form's POST and redirect) is only read again.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let script =
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;";
        let mut last = String::new();
        for _ in 0..200 {
            let read = self.c().execute(script, vec![serde_json::json!(css)]).await;
            if let Some(text) = read.ok().as_ref().and_then(|v| v.as_str()) {
                if text.contains(needle) {
                    return text.to_string();
                }
                last = text.to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never held {needle:?}: {last}")
    }

    pub async fn body(&self) -> String {
        self.text("body").await
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self
            .c()
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.c().find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Sets a field's value as a date picker would.
    pub async fn set_value(&self, css: &str, value: &str) {
        let script = "document.querySelector(arguments[0]).value = arguments[1];";
        let args = vec![serde_json::json!(css), serde_json::json!(value)];
        self.c().execute(script, args).await.unwrap();
    }

    pub async fn choose(&self, css: &str, value: &str) {
        let select = self.c().find(Locator::Css(css)).await.unwrap();
        select.select_by_value(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.c()
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    pub async fn path(&self) -> String {
        let url = self.c().current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits (up to 20 s) for the page to be at `path`: a click's navigation has finished.
    pub async fn wait_path(&self, path: &str) {
        for _ in 0..200 {
            if self.path().await == path {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(self.path().await, path);
    }

    pub async fn sign_in(&self, url: &str, token: &str) {
        self.signed_out(url).await;
        assert_eq!(
            self.path().await,
            "/sign-in",
            "no session: the sign-in page"
        );
        self.fill("#token", token).await;
        self.click("form.sign-in button").await;
        self.text("#operator").await;
    }
}
