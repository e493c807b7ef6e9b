//! The agent as operations run it: its settings in a file (the enrolment token in a file of
//! its own, so never on a command line), flags over the file, and `tally agent install` into
//! a scratch root. Real `tally server` and `tally agent` processes.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{wait_for, Site};

/// Writes `text` to `path` with `mode`.
fn write_file(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The running process's command line, its arguments joined by spaces.
fn cmdline(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

#[test]
fn the_agent_runs_from_its_settings_file_and_the_token_stays_out_of_ps() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path(), "Configured");
    let token_file = dir.path().join("enroll-token");
    write_file(&token_file, &format!("{}\n", site.enroll), 0o600);
    let from_file = dir.path().join("state-from-file");
    let from_flag = dir.path().join("state-from-flag");
    let config = dir.path().join("agent.toml");
    let settings = format!(
        "server = \"{}\"\nenroll_token_file = \"{}\"\nstate_dir = \"{}\"\nwatcher = \"poll\"\n\
         poll_ms = 200\npolicy_secs = 1\nupload_secs = 1\nreport_secs = 1\n",
        site.url,
        token_file.display(),
        from_file.display()
    );
    write_file(&config, &settings, 0o644);
    let mut agent = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["agent", "--config"])
        .arg(&config)
        // A flag beats the file.
        .arg("--state-dir")
        .arg(&from_flag)
        .env_remove("TALLY_ENROLL_TOKEN")
        .env_remove("TALLY_SERVER")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&from_flag.join("agent.json"));
    assert!(!from_file.exists(), "the flag's state directory was used");
    let seen = cmdline(agent.id());
    assert!(seen.contains("--config"), "{seen}");
    assert!(
        !seen.contains(&site.enroll),
        "token in the process list: {seen}"
    );
    let environ = std::fs::read(format!("/proc/{}/environ", agent.id())).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains(&site.enroll));
    // Enrolled with the file's token: the server lists the agent, reporting.
    let agents = common::poll_until(
        || common::tally_json_at(&site.url, &site.token, &["agents"]),
        |a| a[0]["last_heartbeat"].is_string(),
    );
    assert!(agents[0]["last_heartbeat"].is_string(), "{agents}");
    common::stop(agent_child(&mut agent));
}

/// Takes the child out of `slot` for [`common::stop`].
fn agent_child(slot: &mut std::process::Child) -> std::process::Child {
    std::mem::replace(slot, Command::new("true").spawn().unwrap())
}

#[test]
fn bad_agent_settings_are_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    for (text, says) in [
        (
            "server = \"http://127.0.0.1:1\"\npoll_secs = 3\n",
            "poll_secs",
        ),
        (
            "server = \"http://127.0.0.1:1\"\npolicy_secs = 0\n",
            "policy_secs",
        ),
        ("server = \"ftp://x\"\n", "http:// or https://"),
        ("watcher = \"poll\"\n", "no server"),
    ] {
        write_file(&config, text, 0o644);
        let out = Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(["agent", "--config"])
            .arg(&config)
            .env_remove("TALLY_SERVER")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text}");
        common::assert_stderr_has(&out, says);
    }
}

#[test]
fn agent_install_writes_its_settings_token_and_unit_into_a_scratch_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let token = dir.path().join("token");
    write_file(&token, "tally_enrol_me\n", 0o644);
    let install = || {
        Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(["agent", "install", "--server", "https://tally.example.org"])
            .arg("--enroll-token-file")
            .arg(&token)
            .arg("--root")
            .arg(&root)
            .output()
            .unwrap()
    };
    let out = install();
    common::assert_ok(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("skipped systemctl"), "{said}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let kept = root.join("etc/tally/enroll-token");
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap().trim(),
        "tally_enrol_me"
    );
    assert_eq!(mode(&kept), 0o600, "the token is root's alone");
    let settings = root.join("etc/tally/agent.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    let parsed: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(parsed["server"].as_str(), Some("https://tally.example.org"));
    assert_eq!(
        parsed["enroll_token_file"].as_str(),
        Some("/etc/tally/enroll-token")
    );
    assert_eq!(parsed["state_dir"].as_str(), Some("/var/lib/tally-agent"));
    assert!(
        !text.contains("tally_enrol_me"),
        "the settings hold no token"
    );
    let unit =
        std::fs::read_to_string(root.join("etc/systemd/system/tally-agent.service")).unwrap();
    let exe = env!("CARGO_BIN_EXE_tally");
    assert!(
        unit.contains(&format!(
            "ExecStart={exe} agent --config /etc/tally/agent.toml"
        )),
        "{unit}"
    );
    // Again, with a package's unit present: settings rewritten, the package's unit left alone.
    std::fs::create_dir_all(root.join("lib/systemd/system")).unwrap();
    std::fs::write(root.join("lib/systemd/system/tally-agent.service"), "").unwrap();
    std::fs::remove_file(root.join("etc/systemd/system/tally-agent.service")).unwrap();
    common::assert_ok(&install());
    assert!(!root.join("etc/systemd/system/tally-agent.service").exists());
    // A CA file that is not there: refused before anything is written.
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["agent", "install", "--server", "https://tally.example.org"])
        .arg("--enroll-token-file")
        .arg(&token)
        .args(["--ca-file", "/etc/tally/missing-ca.pem", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    common::assert_stderr_has(&out, "missing-ca.pem does not exist");
    // No token file: refused, naming it.
    std::fs::remove_file(&token).unwrap();
    let out = install();
    assert!(!out.status.success());
    common::assert_stderr_has(&out, "does not exist");
}
