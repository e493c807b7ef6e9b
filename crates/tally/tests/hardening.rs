//! Issue 15: data files are created owner-only whatever the umask, and an enrolment token made
//! without an expiry gets the default one, shown by the CLI.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use common::{assert_ok, server_on, spawn_lines, tally, wait_for, Backend, Running};

each_backend!(enrolment_tokens_expire_after_a_week_unless_told);

fn mode(path: &Path) -> u32 {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    meta.permissions().mode() & 0o777
}

/// `tally up` under umask 000, where anything created with the defaults would be readable
/// and writable by every user: the data directory, the database with its WAL and shared
/// memory files, the agent's state directory and its spool are the owner's only.
#[test]
fn data_files_are_owner_only_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let (child, mut lines) = spawn_lines(
        Command::new("sh")
            .args(["-c", "umask 000 && exec \"$0\" up --listen 127.0.0.1:0"])
            .arg(env!("CARGO_BIN_EXE_tally"))
            .current_dir(dir.path())
            .env_remove("TALLY_DATABASE_URL")
            .env_remove("TALLY_DATA_DIR"),
    );
    let up = Running {
        child,
        url: String::new(),
        token: String::new(),
        log: std::path::PathBuf::new(),
    };
    assert!(lines.any(|l| l.unwrap().starts_with("Stop with")));
    std::thread::spawn(move || for _ in lines {});
    let data = dir.path().join("tally-data");
    let spool = data.join("agent/spool.db");
    wait_for(&spool);
    // The server writes (WAL, shared memory) as it starts; the agent opens its spool in WAL.
    for file in ["tally.db-wal", "tally.db-shm", "agent/spool.db-wal"] {
        wait_for(&data.join(file));
    }
    for d in [&data, &data.join("agent")] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    let files = ["tally.db", "tally.db-wal", "tally.db-shm", "agent/spool.db"];
    for file in files
        .iter()
        .chain(&["agent/spool.db-wal", "agent/agent.json"])
    {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    up.stop();
}

fn enrolment_tokens_expire_after_a_week_unless_told(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = server_on(dir.path(), &backend);
    let create = |args: &[&str]| {
        let mut all = vec![
            "enrollment",
            "create",
            "--name",
            "laptops",
            "--format",
            "json",
        ];
        all.extend(args);
        let out = tally(&server, &server.token, &all);
        assert_ok(&out);
        let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let time = |v: &serde_json::Value| v.as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
        let expires = time(&made[0]["expires_at"]);
        let said = String::from_utf8(out.stderr).unwrap();
        (time(&made[0]["created_at"]), expires, said)
    };
    let (created, expires, said) = create(&[]);
    assert_eq!(expires - created, Duration::days(7));
    assert!(
        said.contains(&expires.to_string()),
        "the CLI says when: {said}"
    );
    let (_, chosen, _) = create(&["--expires", "2099-01-01T00:00:00Z"]);
    assert_eq!(
        chosen,
        "2099-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );

    // The table shows the expiry too.
    let out = tally(&server, &server.token, &["enrollment", "list"]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.lines().next().unwrap().contains("EXPIRES_AT"),
        "{table}"
    );
    assert!(table.contains("2099-01-01"), "{table}");
}
