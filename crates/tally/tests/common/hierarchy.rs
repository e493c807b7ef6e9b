//! Sites of a hierarchy as real `tally server` processes on loopback (`hierarchy.rs`, and the
//! console narrowed to a site in `web_browser_sites.rs`): each [`Node`] started with its own
//! data directory and database, below a parent when it joins one, with the agent API calls
//! that give a site devices, inventory and usage.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use super::{banner_token, free_port, poll_until, tally_at, tally_json_at, Backend};

/// What Prometheus presents to each site's `/metrics`.
pub const METRICS_TOKEN: &str = "hierarchy-metrics-token";

/// One site's server: its data directory, port, database and admin token.
pub struct Node {
    pub code: &'static str,
    pub dir: PathBuf,
    port: u16,
    pub backend: Backend,
    pub parent: Option<(String, String)>,
    pub token: String,
    child: Option<Child>,
}

impl Node {
    /// Starts a new site `code`; below `parent` (its URL and a join secret) when given.
    pub fn start(
        root: &Path,
        code: &'static str,
        backend: Backend,
        parent: Option<(String, String)>,
    ) -> Node {
        let mut node = Node {
            code,
            dir: root.join(code),
            port: free_port(),
            backend,
            parent,
            token: String::new(),
            child: None,
        };
        node.token = node.run().expect("a new server prints a bootstrap token");
        node
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port, directory and database.
    pub fn run(&mut self) -> Option<String> {
        std::fs::create_dir_all(&self.dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let metrics_token = self.dir.join("metrics-token");
        std::fs::write(&metrics_token, METRICS_TOKEN).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
        cmd.args(["server", "--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--metrics-token-file")
            .arg(&metrics_token)
            .args(["--site-code", self.code, "--site-name", self.code])
            .args(self.backend.db_args())
            .env_remove("TALLY_DATABASE_URL")
            .env("TALLY_LOG", "info,tally_service=debug");
        if let Some((url, secret)) = &self.parent {
            cmd.args(["--parent-url", url, "--parent-token", secret])
                .args(["--sync-interval-secs", "1"]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(log).spawn().unwrap();
        let lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        let token = banner_token(lines);
        self.child = Some(child);
        token
    }

    /// `tally tasks run NAME`, asked again while the scheduler runs it already.
    pub fn run_task(&self, name: &str) {
        let args = ["tasks", "run", name];
        let out = poll_until(
            || tally_at(&self.url(), &self.token, &args),
            |out| !String::from_utf8_lossy(&out.stderr).contains("running already"),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tally tasks run {name}: {stderr}");
    }

    /// A gauge's value as `/metrics` shows it.
    pub fn metric(&self, name: &str) -> i64 {
        let text = reqwest::blocking::Client::new()
            .get(format!("{}/metrics", self.url()))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .unwrap()
            .text()
            .unwrap();
        let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
        let value = line.unwrap_or_else(|| panic!("no {name} in {text}"));
        value[name.len() + 1..].trim().parse::<f64>().unwrap() as i64
    }

    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            super::stop(child);
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn json(&self, args: &[&str]) -> Value {
        tally_json_at(&self.url(), &self.token, args)
    }

    /// GETs an admin API path as this site's admin.
    pub fn get(&self, path: &str) -> Value {
        let resp = reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.url()))
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().unwrap()
    }

    /// Runs the monthly summary now (again after a scheduled run that holds its lock) and
    /// returns the runs and milliseconds of `rule` it holds.
    pub fn monthly(&self, rule: &str) -> (i64, i64) {
        let http = reqwest::blocking::Client::new();
        let url = format!("{}/api/v1/tasks/summarize_monthly_usage/run", self.url());
        let ran = poll_until(
            || {
                http.post(&url)
                    .bearer_auth(&self.token)
                    .send()
                    .unwrap()
                    .status()
            },
            |status| *status != 409,
        );
        assert!(ran.is_success(), "{ran}");
        let rows = self.get(&format!("/api/v1/summaries/monthly?rule={rule}"));
        let rows = rows.as_array().unwrap();
        let sum = |field: &str| rows.iter().map(|r| r[field].as_i64().unwrap()).sum();
        (sum("runs"), sum("usage_ms"))
    }

    pub fn devices(&self) -> Vec<Value> {
        self.get("/api/v1/devices").as_array().unwrap().clone()
    }

    /// Invites child `code` and returns what it starts with: this URL and the secret.
    pub fn invite(&self, code: &str) -> (String, String) {
        let invited = self.json(&["sites", "invite", "--code", code, "--name", code]);
        let secret = invited[0]["secret"].as_str().unwrap().to_string();
        (self.url(), secret)
    }

    /// A new child site of this one.
    pub fn child(&self, root: &Path, code: &'static str) -> Node {
        let backend = self.backend.fresh_like();
        Node::start(root, code, backend, Some(self.invite(code)))
    }

    /// Enrols an agent for `host` (with `machine_id`) and returns its credentials.
    pub fn enrol(&self, host: &str, machine_id: &str) -> String {
        super::enrol_agent_on(&self.url(), &self.token, host, Some(machine_id))
    }

    /// Posts to the agent endpoint `path` as `creds`; the answer's JSON.
    pub fn agent(&self, creds: &str, path: &str, body: Option<Value>) -> Value {
        let http = reqwest::blocking::Client::new();
        let url = format!("{}/api/v1/agent/{path}", self.url());
        let req = match body {
            Some(body) => http.post(url).json(&body),
            None => http.get(url),
        };
        let resp = req.bearer_auth(creds).send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Uploads `n` finished one-minute runs of `code` by `account`, ids `prefix-0…`, from 08:00
    /// UTC two days ago (raw records every site still keeps).
    pub fn usage(&self, creds: &str, prefix: &str, account: &str, n: usize) {
        self.usage_from(creds, (prefix, account), n, morning(2));
    }

    /// [`Node::usage`] from `first`, a minute apart.
    pub fn usage_from(
        &self,
        creds: &str,
        (prefix, account): (&str, &str),
        n: usize,
        first: chrono::DateTime<chrono::Utc>,
    ) {
        for chunk in (0..n).collect::<Vec<_>>().chunks(5_000) {
            let records: Vec<Value> = chunk
                .iter()
                .map(|i| {
                    let start = first + chrono::Duration::minutes(*i as i64);
                    let end = start + chrono::Duration::seconds(59);
                    let (s, e) = (start.to_rfc3339(), end.to_rfc3339());
                    super::code_record(&format!("{prefix}-{i}"), account, (&s, &e), (true, false))
                })
                .collect();
            let batch = json!({"batch_id": format!("{prefix}-{}", chunk[0]), "records": records});
            self.agent(creds, "usage", Some(batch));
        }
    }

    /// The tree as `tally sites` lists it.
    pub fn sites(&self) -> Vec<Value> {
        self.json(&["sites"]).as_array().unwrap().clone()
    }

    /// Raw records this site holds for devices of `site`.
    pub fn records_of(&self, site: &str) -> i64 {
        let sites = self.sites();
        let row = sites.iter().find(|s| s["code"] == site);
        row.map_or(0, |s| s["records"].as_i64().unwrap())
    }

    pub fn rules(&self) -> Vec<Value> {
        self.json(&["rules", "list"]).as_array().unwrap().clone()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// 08:00 UTC `days` days ago.
pub fn morning(days: i64) -> chrono::DateTime<chrono::Utc> {
    let day = (chrono::Utc::now() - chrono::Duration::days(days)).date_naive();
    day.and_hms_opt(8, 0, 0).unwrap().and_utc()
}

/// An inventory listing `packages` (names), with `svc-backup` a service account.
pub fn inventory(packages: &[&str]) -> Value {
    let software: Vec<Value> = packages
        .iter()
        .map(|p| json!({"name": p, "version": "1.0", "publisher": "ACME", "executables": [p]}))
        .collect();
    json!({"hash": packages.join(","), "hardware": {"sockets": 2, "cores": 8},
           "software": software,
           "accounts": [{"name": "svc-backup", "uid": 990, "shell": "/usr/sbin/nologin",
                         "service_account": true, "reason": "no login shell"}]})
}
