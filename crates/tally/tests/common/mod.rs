//! Running the real `tally` binary, on a SQLite file in its data directory or on a fresh
//! PostgreSQL database (`each_backend!` runs one test body on each).

#![allow(dead_code)]

#[path = "../../../tally-store/tests/common/pgdb.rs"]
mod pgdb;

#[path = "../../../tally-store/tests/common/needs.rs"]
pub mod needs;

#[path = "../../../tally-server/tests/common/json.rs"]
pub mod json;

pub mod hierarchy;
pub mod load;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub use pgdb::{Backend, PgDb};

/// The netlink watcher, another network namespace, mounts and new users: what needs root.
pub fn needs_root(group: &str) -> bool {
    needs::group(group, true, &[])
}

/// Reading PDFs back, as the report tests do.
pub fn needs_poppler(group: &str) -> bool {
    needs::group(
        group,
        false,
        &[("pdftotext", "poppler-utils"), ("pdfinfo", "poppler-utils")],
    )
}

impl Backend {
    /// The flags that point `tally up`, `tally server`, `tally import` and `tally export` at
    /// this backend's database: none on SQLite, whose file is the default one in the data
    /// directory, so the SQLite runs are exactly what a newcomer types.
    pub fn db_args(&self) -> Vec<String> {
        match self {
            Backend::Sqlite => Vec::new(),
            Backend::Postgres(db) => vec!["--database-url".into(), db.url.clone()],
        }
    }

    /// A second, empty database on the same backend: a new PostgreSQL database, or on SQLite
    /// whatever data directory the caller names.
    pub fn fresh_like(&self) -> Backend {
        match self {
            Backend::Sqlite => Backend::Sqlite,
            Backend::Postgres(_) => Backend::Postgres(
                PgDb::create_blocking().expect("PostgreSQL served the first database"),
            ),
        }
    }
}

pub struct Running {
    pub child: Child,
    pub url: String,
    pub token: String,
    /// The server's stderr, shown when the test fails ([`show_log_if_failing`]).
    pub log: std::path::PathBuf,
}

impl Running {
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        show_log_if_failing(&self.log);
    }
}

/// A file for the stderr of a server a test starts, in `dir`, unique within the test run.
pub fn log_file(dir: &Path, verb: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!("{verb}-{n}.log"))
}

/// When the test is failing (the thread is unwinding), prints the end of a server's log: a
/// failure that only shows up under load (a 503 from a locked database, say) is explained by
/// what the server logged, which is otherwise lost with the test's temporary directory.
pub fn show_log_if_failing(log: &Path) {
    if !std::thread::panicking() {
        return;
    }
    let Ok(text) = std::fs::read_to_string(log) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(80)..];
    eprintln!("--- the end of {} ---\n{}", log.display(), tail.join("\n"));
}

/// Starts `tally up` in `dir` and reads the URL and token from its banner.
pub fn up(dir: &std::path::Path) -> Running {
    up_on(dir, &Backend::Sqlite)
}

/// [`up`] with its database on `backend`.
pub fn up_on(dir: &std::path::Path, backend: &Backend) -> Running {
    start("up", dir, backend)
}

/// `tally server` in `dir` on a new database, read like [`up`]: the same banner and a
/// bootstrap token, but no local agent, so nothing reports an inventory meanwhile.
pub fn server_on(dir: &std::path::Path, backend: &Backend) -> Running {
    start("server", dir, backend)
}

/// [`server_on`] with more flags, e.g. `--config FILE`.
pub fn server_with_flags(dir: &std::path::Path, backend: &Backend, flags: &[&str]) -> Running {
    start_with("server", dir, backend, flags)
}

fn start(verb: &str, dir: &std::path::Path, backend: &Backend) -> Running {
    start_with(verb, dir, backend, &[])
}

fn start_with(verb: &str, dir: &std::path::Path, backend: &Backend, flags: &[&str]) -> Running {
    let log = log_file(dir, verb);
    let (child, mut lines) = spawn_logged(
        &log,
        Command::new(env!("CARGO_BIN_EXE_tally"))
            .args([verb, "--listen", "127.0.0.1:0"])
            .args(backend.db_args())
            .args(flags)
            .current_dir(dir)
            .env_remove("TALLY_DATABASE_URL")
            .env_remove("TALLY_DATA_DIR"),
    );
    let (mut url, mut token) = (None, None);
    while url.is_none() || token.is_none() {
        let line = lines.next().expect("banner ended early").unwrap();
        if let Some(u) = line.strip_prefix("Tally is running at ") {
            url = Some(u.to_string());
        }
        if let Some(t) = line.strip_prefix("Admin token (shown once, keep it): ") {
            token = Some(t.to_string());
        }
        // `tally up` restarted: the first start's token, from the file it names.
        if let Some(file) = line.strip_prefix("Admin token: in ") {
            token = Some(std::fs::read_to_string(file).unwrap().trim().to_string());
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        url: url.unwrap(),
        token: token.unwrap(),
        log,
    }
}

/// One usage record of `code` (VS Code 1.95.0) by `account`, as an agent uploads it: over
/// `(start, end)` (RFC 3339, UTC), with the flags `(started, still_running)`.
pub fn code_record(
    id: &str,
    account: &str,
    (start, end): (&str, &str),
    (started, still_running): (bool, bool),
) -> serde_json::Value {
    serde_json::json!({
        "meter_data_id": id,
        "file": {"file_name": "code", "original_file_name": "code", "version": "1.95.0",
                 "product_name": "Code", "publisher": "Microsoft", "language": 65535},
        "user": {"account": account},
        "start_time": start, "start_time_offset": 0, "end_time": end, "end_time_offset": 0,
        "started": started, "still_running": still_running,
        "start_not_captured": false, "end_not_captured": false, "in_ts_session": false
    })
}

/// Asserts that a command succeeded; its standard error is the message when it did not.
#[track_caller]
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that a command's standard error says `text`, showing all of it when not.
#[track_caller]
pub fn assert_stderr_has(out: &Output, text: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(text), "{stderr}");
}

/// Spawns `cmd` with its standard output piped (its errors dropped) and returns the child
/// with the lines it prints, to read a banner from.
pub fn spawn_lines(cmd: &mut Command) -> (Child, Lines<BufReader<ChildStdout>>) {
    spawn_with_stderr(cmd, Stdio::null())
}

/// [`spawn_lines`], the child's stderr appended to `log`.
pub fn spawn_logged(log: &Path, cmd: &mut Command) -> (Child, Lines<BufReader<ChildStdout>>) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    spawn_with_stderr(cmd, Stdio::from(file))
}

fn spawn_with_stderr(cmd: &mut Command, stderr: Stdio) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Runs `tally ARGS` against a running server and returns its output.
pub fn tally(server: &Running, token: &str, args: &[&str]) -> Output {
    tally_at(&server.url, token, args)
}

/// Runs `tally ARGS` against the server at `url`.
pub fn tally_at(url: &str, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .env("TALLY_URL", url)
        .env("TALLY_TOKEN", token)
        .output()
        .unwrap()
}

/// Runs `tally ARGS --format json`, insists it succeeded, and parses stdout.
pub fn tally_json(server: &Running, token: &str, args: &[&str]) -> serde_json::Value {
    tally_json_at(&server.url, token, args)
}

/// [`tally_json`] against the server at `url`.
pub fn tally_json_at(url: &str, token: &str, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let out = tally_at(url, token, &all);
    assert!(
        out.status.success(),
        "tally {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `tally tasks run NAME` as [`tally_json`] runs it, asked again while the task is running
/// already: the scheduler starts every due task as the server starts, and a run asked for
/// meanwhile is refused (409, "run it again after"), which is what this does.
pub fn run_task(server: &Running, name: &str) -> serde_json::Value {
    let args = ["tasks", "run", name, "--format", "json"];
    let out = poll_until(
        || tally(server, &server.token, &args),
        |out| !String::from_utf8_lossy(&out.stderr).contains("running already"),
    );
    assert!(
        out.status.success(),
        "tally tasks run {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `tally server` and returns it with the bootstrap token, if it printed one.
pub fn server(data: &Path, port: u16) -> (Child, Option<String>) {
    server_with(data, port, &[])
}

/// [`server`] with more flags.
pub fn server_with(data: &Path, port: u16, flags: &[&str]) -> (Child, Option<String>) {
    let (child, lines) = spawn_logged(
        &data.with_extension("log"),
        Command::new(env!("CARGO_BIN_EXE_tally"))
            .args([
                "server",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data)
            .args(flags),
    );
    (child, banner_token(lines))
}

/// Reads `tally server`'s banner up to "Stop with", keeps draining its output (so the server
/// never blocks on a full pipe) and returns the bootstrap token, if it printed one.
pub fn banner_token(mut lines: Lines<BufReader<ChildStdout>>) -> Option<String> {
    let mut token = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(t) = line.strip_prefix("Admin token (shown once, keep it): ") {
            token = Some(t.to_string());
        }
        if line.starts_with("Stop with") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    token
}

/// Stops a child the way a service manager does (SIGTERM) and waits for it.
pub fn stop(mut child: Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

/// A fresh `tally server` with an admin token, a rule for a copy of `sleep` named `program`
/// in `dir`, and an enrolment token for one agent.
pub struct Site {
    pub server: Option<Child>,
    pub url: String,
    pub token: String,
    pub program: std::path::PathBuf,
    pub enroll: String,
    /// The server's stderr, shown when the test fails.
    pub log: std::path::PathBuf,
}

impl Site {
    pub fn new(dir: &Path, rule: &str) -> Self {
        Self::with_server_flags(dir, rule, &[])
    }

    /// [`Site::new`], its server started with more flags.
    pub fn with_server_flags(dir: &Path, rule: &str, flags: &[&str]) -> Self {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let (child, token) = server_with(&dir.join("server"), port, flags);
        let token = token.expect("a new server prints a bootstrap token");
        let name = format!("tally-{}-{}", rule.to_lowercase(), std::process::id());
        let program = dir.join(&name);
        std::fs::copy("/bin/sleep", &program).unwrap();
        tally_json_at(
            &url,
            &token,
            &["rules", "add", "--name", rule, "--file-name", &name],
        );
        let enrol = tally_json_at(
            &url,
            &token,
            &["enrollment", "create", "--name", rule, "--max-uses", "1"],
        );
        Self {
            server: Some(child),
            url,
            token,
            program,
            enroll: enrol[0]["token"].as_str().unwrap().to_string(),
            log: dir.join("server").with_extension("log"),
        }
    }

    /// Starts `tally agent` with one-second cycles (unless `extra` sets `--report-secs`),
    /// logging to `state/agent.log`.
    pub fn agent(&self, state: &Path, extra: &[&str]) -> Child {
        self.agent_at(&self.url, &self.enroll, state, extra)
    }

    /// [`Site::agent`] talking to `server` (a proxy in front of this site's server) and
    /// enrolling, if it must, with `enroll`.
    pub fn agent_at(&self, server: &str, enroll: &str, state: &Path, extra: &[&str]) -> Child {
        std::fs::create_dir_all(state).unwrap();
        let cycles: &[&str] = if extra.contains(&"--report-secs") {
            &[]
        } else {
            &["--report-secs", "1"]
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state.join("agent.log"))
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(["agent", "--server", server, "--enroll-token", enroll])
            .args(cycles)
            .args(["--policy-secs", "1", "--upload-secs", "1"])
            .arg("--state-dir")
            .arg(state)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Usage records of `rule`, waiting until `done` holds for them (or 30 s pass).
    pub fn records_until(
        &self,
        rule: &str,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        poll_until(
            || {
                let records = tally_json_at(&self.url, &self.token, &["usage", "--rule", rule]);
                records.as_array().unwrap().clone()
            },
            |records| done(records),
        )
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            stop(server);
        }
        show_log_if_failing(&self.log);
    }
}

/// Waits until `path` exists (an agent's credentials once it enrolled).
pub fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !path.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(path.exists(), "{} never appeared", path.display());
}

/// Calls `fetch` until `done` holds for its answer or 30 s pass; returns the last answer.
pub fn poll_until<T>(mut fetch: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = fetch();
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Whether any run in a `tally usage --runs` answer has ended.
pub fn any_run_ended(runs: &serde_json::Value) -> bool {
    runs.as_array()
        .unwrap()
        .iter()
        .any(|r| r["still_running"] == false)
}

/// A time in a JSON answer.
pub fn time(v: &serde_json::Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// Records grouped by instance, each group in period order.
pub fn by_instance(records: &[serde_json::Value]) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut groups: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for r in records {
        let id = r["meter_data_id"].as_str().unwrap().to_string();
        groups.entry(id).or_default().push(r.clone());
    }
    for group in groups.values_mut() {
        group.sort_by_key(|r| time(&r["start_time"]));
    }
    groups
}

pub fn ended(group: &[serde_json::Value]) -> bool {
    group.iter().any(|r| r["still_running"] == false)
}

/// One instance's records: one start, periods joined exactly, one end, last.
pub fn assert_continuous(group: &[serde_json::Value]) {
    assert_eq!(group[0]["started"], true, "{group:#?}");
    assert!(group[1..].iter().all(|r| r["started"] == false));
    for pair in group.windows(2) {
        assert_eq!(pair[0]["end_time"], pair[1]["start_time"], "{group:#?}");
        assert_eq!(pair[0]["still_running"], true);
    }
    assert_eq!(group.last().unwrap()["still_running"], false, "{group:#?}");
}

/// Reads every file of the SQLite database in `data` (`tally.db` and its `-wal`/`-shm`) and
/// asserts none holds any of `names`, in any case; then that the pseudonym key beside it is
/// owner-only.
pub fn assert_names_pseudonymised_in(data: &Path, names: &[&str]) {
    use std::os::unix::fs::PermissionsExt;
    let mut read = 0;
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("tally.db")
        {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        read += bytes.len();
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        for name in names {
            let name = name.to_lowercase();
            assert!(
                !text.contains(&name),
                "{name:?} found in {}",
                path.display()
            );
        }
    }
    assert!(read > 0, "the database files were read");
    let key = std::fs::metadata(data.join("pseudonym.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
}

/// The audit log's actions, oldest first.
pub fn audit_actions(server: &Running) -> Vec<String> {
    let audit: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/audit", server.url))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    json::strings(&audit, "action")
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// Writes `text` to `dir/name`; the path.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `tally import FILES…` into the data directory `dir/tally-data` on `backend`.
pub fn import(
    dir: &Path,
    backend: &Backend,
    files: &[String],
    extra: &[&str],
) -> std::process::Output {
    let data = dir.join("tally-data");
    std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("import")
        .args(files)
        .args(["--data-dir", data.to_str().unwrap()])
        .args(backend.db_args())
        .args(extra)
        .output()
        .unwrap()
}

/// `tally ARGS` on this machine alone (no server).
pub fn local(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .output()
        .unwrap()
}

/// An issuer key pair in `dir` (`vendor.pub`, `vendor.key`).
pub fn keygen(dir: &Path, issuer: &str, name: &str) -> (String, String) {
    let prefix = dir.join(name);
    let out = local(&[
        "certificates",
        "keygen",
        "--issuer",
        issuer,
        "--out",
        prefix.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let public = prefix.with_extension("pub").display().to_string();
    (public, prefix.with_extension("key").display().to_string())
}

/// A certificate file signed with `key`: `(product, metric, count, created, expires, cert key)`.
pub fn sign(dir: &Path, key: &str, c: (&str, &str, &str, &str, &str, &str)) -> String {
    let path = dir.join(format!("{}.cert", c.5)).display().to_string();
    let mut args = vec![
        "certificates",
        "sign",
        "--key",
        key,
        "--customer",
        "Contoso Ltd",
        "--product",
        c.0,
        "--metric",
        c.1,
        "--count",
        c.2,
        "--created",
        c.3,
        "--cert-key",
        c.5,
        "--out",
        &path,
    ];
    if !c.4.is_empty() {
        args.extend(["--expires", c.4]);
    }
    assert_ok(&local(&args));
    path
}

/// Enrols an agent named `host` over the API (saying nothing of its machine, as agents did
/// before they reported a machine-id) and returns its credentials.
pub fn enrol_agent(url: &str, admin: &str, host: &str) -> String {
    enrol_agent_on(url, admin, host, None)
}

/// [`enrol_agent`] for an agent that reports its machine's `machine_id`.
pub fn enrol_agent_on(url: &str, admin: &str, host: &str, machine_id: Option<&str>) -> String {
    let http = reqwest::blocking::Client::new();
    let token: serde_json::Value = http
        .post(format!("{url}/api/v1/enrollment-tokens"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"name": host}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let agent: serde_json::Value = http
        .post(format!("{url}/api/v1/agent/enroll"))
        .json(
            &serde_json::json!({"enrollment_token": token["token"], "host_name": host,
                                  "machine_id": machine_id}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    format!(
        "{}.{}",
        agent["agent_id"].as_str().unwrap(),
        agent["agent_secret"].as_str().unwrap()
    )
}
