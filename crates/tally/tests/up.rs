//! `tally up` as a newcomer runs it: a real process, a real data directory, real HTTP; and
//! the same with the database on PostgreSQL.

mod common;
mod tls;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_ok, spawn_lines, up_on, Backend};

each_backend!(
    up_serves_health_and_a_working_admin_token_and_reuses_its_data,
    a_bad_setting_is_refused_with_a_message,
    the_config_file_is_read_and_flags_override_it,
    plain_http_off_loopback_needs_an_explicit_flag,
    https_server_and_cli_with_a_private_ca,
);

fn get(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(serde_json::Value::Null))
}

/// `tally server ARGS` in `dir` on `backend`'s database.
fn server(backend: &Backend, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
    cmd.arg("server")
        .args(args)
        .args(backend.db_args())
        .current_dir(dir);
    cmd
}

/// Runs `tally server ARGS` as [`server`] does, insists it failed, and returns what it said.
fn refused(backend: &Backend, dir: &Path, args: &[&str]) -> String {
    let out = server(backend, dir, args).output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn up_serves_health_and_a_working_admin_token_and_reuses_its_data(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let first = up_on(dir.path(), &backend);
    // The data directory holds the SQLite file, or only reports and agent state when the
    // database is elsewhere.
    let sqlite_file = dir.path().join("tally-data/tally.db");
    assert_eq!(
        sqlite_file.exists(),
        matches!(backend, Backend::Sqlite),
        "data directory created"
    );
    let (status, health) = get(&format!("{}/healthz", first.url), None);
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], backend.name());
    let (status, me) = get(&format!("{}/api/v1/whoami", first.url), Some(&first.token));
    assert_eq!(status, 200);
    assert_eq!(me["role"], "admin");
    let (status, _) = get(&format!("{}/api/v1/whoami", first.url), Some("tally_wrong"));
    assert_eq!(status, 401);
    let old_token = first.token.clone();
    assert!(first.stop().success(), "SIGTERM stops tally cleanly");

    // The first start kept its token in the data directory, readable by its owner only.
    let token_file = dir.path().join("tally-data/admin-token");
    let kept = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(kept.trim(), old_token);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token file is private");

    // A restart mints nothing: its banner points at the file (the harness reads the token
    // from there), and the database holds the one token of the first start.
    let second = up_on(dir.path(), &backend);
    assert_eq!(second.token, old_token, "a restart reuses the first token");
    let (status, tokens) = get(&format!("{}/api/v1/tokens", second.url), Some(&old_token));
    assert_eq!(status, 200);
    assert_eq!(
        tokens.as_array().unwrap().len(),
        1,
        "no token minted on restart: {tokens}"
    );
    let (_, sites) = get(&format!("{}/api/v1/sites", second.url), Some(&second.token));
    assert_eq!(sites.as_array().unwrap().len(), 1);
    assert!(second.stop().success());
}

fn a_bad_setting_is_refused_with_a_message(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let err = refused(
        &backend,
        dir.path(),
        &["--site-code", "TOOLONG", "--listen", "127.0.0.1:0"],
    );
    assert!(
        err.contains("site_code") && err.contains("three letters"),
        "{err}"
    );
    let args = [
        "--position-refresh-secs",
        "90000",
        "--listen",
        "127.0.0.1:0",
    ];
    let err = refused(&backend, dir.path(), &args);
    assert!(
        err.contains("position_refresh_secs") && err.contains("0 to 86400"),
        "{err}"
    );
}

fn the_config_file_is_read_and_flags_override_it(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tally.toml"),
        "site_code = \"CFG\"\nsite_name = \"From file\"\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let (mut child, mut lines) = spawn_lines(
        server(
            &backend,
            dir.path(),
            &["--config", "tally.toml", "--listen", "127.0.0.1:0"],
        )
        .env_remove("TALLY_SITE_CODE"),
    );
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.starts_with("Tally is running at http://127.0.0.1:"),
        "{first}"
    );
    assert!(
        !first.ends_with(":1"),
        "the --listen flag beats the file: {first}"
    );
    assert!(second.contains("site CFG"), "{second}");
}

fn plain_http_off_loopback_needs_an_explicit_flag(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let err = refused(&backend, dir.path(), &["--listen", "0.0.0.0:0"]);
    assert!(
        err.contains("--tls-cert") && err.contains("--insecure-http"),
        "{err}"
    );

    let mut child = server(
        &backend,
        dir.path(),
        &["--listen", "0.0.0.0:0", "--insecure-http"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let first = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    assert!(
        first.starts_with("Tally is running at http://0.0.0.0:"),
        "{first}"
    );
    assert!(
        logs.contains("WARN") && logs.contains("plain HTTP"),
        "{logs}"
    );
}

fn https_server_and_cli_with_a_private_ca(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = tls::https_server(dir.path(), &backend);
    let url = &server.url;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(["devices", "--format", "json"])
            .args(extra)
            .env("TALLY_URL", url)
            .env("TALLY_TOKEN", &server.token)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let trusted = run(&["--ca-file", "cert.pem"]);
    let untrusted = run(&[]);
    drop(server);
    assert_ok(&trusted);
    assert!(
        !untrusted.status.success(),
        "the server's certificate is verified"
    );
    assert!(String::from_utf8_lossy(&untrusted.stderr).contains("cannot reach Tally"));
}

/// The banner ends with what a newcomer does next: the console, a first rule, another
/// machine, and where the data lives.
#[test]
fn up_ends_its_banner_with_the_next_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines) = spawn_lines(
        Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(["up", "--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env_remove("TALLY_DATABASE_URL")
            .env_remove("TALLY_DATA_DIR"),
    );
    let mut banner = Vec::new();
    for line in lines {
        let line = line.unwrap();
        let last = line.contains("4. Your data lives in");
        banner.push(line);
        if last {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = banner.join("\n");
    let url = banner[0].strip_prefix("Tally is running at ").unwrap();
    assert!(
        text.contains(&format!("Open the console at {url}/")),
        "{text}"
    );
    assert!(text.contains("tally rules add"), "{text}");
    assert!(
        text.contains("tally agent install --server URL --enroll-token-file FILE"),
        "{text}"
    );
    let data = std::fs::canonicalize(dir.path())
        .unwrap()
        .join("tally-data");
    let last = banner.last().unwrap();
    assert!(last.contains(&data.display().to_string()), "{last}");
    assert!(last.contains("tally backup"), "{last}");
}

/// `tally server --metrics-token-file F` serves `/metrics` to that token's bearer only.
#[test]
fn the_server_serves_metrics_to_the_token_in_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("metrics-token");
    std::fs::write(&token_file, "scrape-me\n").unwrap();
    let port = common::free_port();
    let flag = token_file.to_str().unwrap();
    let (server, _) = common::server_with(
        &dir.path().join("data"),
        port,
        &["--metrics-token-file", flag],
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let client = reqwest::blocking::Client::new();
    let scraped = client.get(&url).bearer_auth("scrape-me").send().unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped
        .text()
        .unwrap()
        .contains("tally_build_info{version="));
    let refused = client.get(&url).bearer_auth("guess").send().unwrap();
    assert_eq!(refused.status(), 401);
    common::stop(server);
}
