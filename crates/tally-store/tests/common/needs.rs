//! What a test group needs beyond cargo: root, or programs from distribution packages. Without
//! them a group is skipped and named once per test binary with the command that enables it, so
//! a newcomer who is not root gets reasons, not failures; under `CI=true` a missing need fails
//! the test instead, so CI never skips in silence. The store, server and CLI suites share this
//! file by path, as they share `pgdb.rs`.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Mutex;

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether the test process runs as root (its effective uid is 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    })
}

/// Whether `program` is an executable file on the `PATH`, or in `/usr/sbin` or `/sbin`, where
/// administration tools live off a plain user's `PATH`.
pub fn has_program(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let admin = [std::path::PathBuf::from("/usr/sbin"), "/sbin".into()];
    std::env::split_paths(&path).chain(admin).any(|dir| {
        std::fs::metadata(dir.join(program))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Whether `group` can run here: root when `root`, and each `(program, package)` installed.
/// When not: outside CI, says so once per test binary on standard error (past the harness's
/// capture) and returns false; under `CI=true`, panics with the same sentence.
pub fn group(group: &str, root: bool, programs: &[(&str, &str)]) -> bool {
    let mut missing = Vec::new();
    let mut enable = Vec::new();
    if root && !is_root() {
        missing.push("root".to_string());
        enable.push("run the tests as root (sudo -E cargo test --workspace)".to_string());
    }
    let mut packages: Vec<&str> = Vec::new();
    for (program, package) in programs {
        if !has_program(program) {
            missing.push((*program).to_string());
            if !packages.contains(package) {
                packages.push(package);
            }
        }
    }
    if !packages.is_empty() {
        enable.push(format!("apt-get install {}", packages.join(" ")));
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{group}: needs {}; to run: {}",
        missing.join(", "),
        enable.join("; ")
    );
    assert!(!in_ci(), "CI=true and {why}");
    static NAMED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    if NAMED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(group.to_string())
    {
        let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
    }
    false
}
