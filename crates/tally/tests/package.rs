//! The Debian package, built by `contrib/package/build-deb` from this build's binary and
//! installed with the real `dpkg` into a clean root the test makes (no base system: dpkg's
//! database, and the account files the maintainer scripts edit): files, the server's user,
//! permissions, the units as `systemd-analyze verify` sees them; then removed and purged.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../tally-store/tests/common/needs.rs"]
mod needs;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// An empty system for dpkg: its database, and root alone in the account files.
fn clean_root(root: &Path) {
    for dir in [
        "etc",
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for (file, text) in [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("etc/group", "root:x:0:\n"),
        ("etc/shadow", "root:*:20000:0:99999:7:::\n"),
        ("etc/gshadow", "root:*::\n"),
        ("var/lib/dpkg/status", ""),
        ("var/lib/dpkg/available", ""),
    ] {
        std::fs::write(root.join(file), text).unwrap();
    }
}

/// `dpkg --root ROOT ARGS`: maintainer scripts run on this system with `DPKG_ROOT` (there is no
/// shell in the root to chroot into); dependencies are a base system's, which the root lacks.
fn dpkg(root: &Path, args: &[&str]) -> Output {
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args([
            "--force-script-chrootless",
            "--force-depends",
            "--log=/dev/null",
        ])
        .args(args))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The `name` line of an account file.
fn account(root: &Path, file: &str, name: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(root.join(file)).unwrap();
    text.lines()
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f[0] == name)
}

fn build_deb(out: &Path) -> PathBuf {
    let built = run(
        Command::new(format!("{WORKSPACE}/contrib/package/build-deb"))
            .args(["--binary", env!("CARGO_BIN_EXE_tally"), "--out"])
            .arg(out),
    );
    PathBuf::from(String::from_utf8(built.stdout).unwrap().trim())
}

#[test]
fn the_deb_installs_into_a_clean_root_verifies_and_is_removed_and_purged() {
    if !needs_root_and_dpkg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deb = build_deb(dir.path());
    let root = dir.path().join("root");
    clean_root(&root);
    dpkg(&root, &["-i", deb.to_str().unwrap()]);

    let bin = root.join("usr/bin/tally");
    assert_eq!(mode(&bin), 0o755);
    let sections = run(Command::new("objdump").arg("-h").arg(&bin));
    let sections = String::from_utf8_lossy(&sections.stdout);
    assert!(
        !sections.contains(".debug_info"),
        "the binary is stripped of debug info"
    );
    let user = account(&root, "etc/passwd", "tally").expect("the tally user");
    assert_eq!(user[5], "/var/lib/tally");
    assert_eq!(user[6], "/usr/sbin/nologin");
    assert!(
        user[2].parse::<u32>().unwrap() < 1000,
        "a system user: {user:?}"
    );
    let gid: u32 = account(&root, "etc/group", "tally").unwrap()[2]
        .parse()
        .unwrap();
    let data = std::fs::metadata(root.join("var/lib/tally")).unwrap();
    assert_eq!(
        (data.uid(), data.mode() & 0o777),
        (user[2].parse().unwrap(), 0o700)
    );
    let settings = root.join("etc/tally/server.toml");
    let meta = std::fs::metadata(&settings).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (0, gid, 0o640)
    );
    assert_eq!(mode(&root.join("var/lib/tally-agent")), 0o700);
    for file in [
        "usr/share/man/man1/tally.1.gz",
        "usr/share/bash-completion/completions/tally",
        "usr/share/zsh/vendor-completions/_tally",
        "usr/share/fish/vendor_completions.d/tally.fish",
        "usr/share/tally/grafana/tally-dashboard.json",
    ] {
        assert_eq!(mode(&root.join(file)), 0o644, "{file}");
    }
    // The packaged settings are what the server reads.
    let config = std::fs::read_to_string(&settings).unwrap();
    assert!(
        tally_server::ConfigFile::load(&settings).is_ok(),
        "{config}"
    );
    verify_units(&root);

    dpkg(&root, &["-r", "tally"]);
    assert!(!bin.exists());
    assert!(!root
        .join("lib/systemd/system/tally-server.service")
        .exists());
    assert!(settings.exists(), "remove keeps the conffile");
    let purged = dpkg(&root, &["-P", "tally"]);
    assert!(
        !root.join("etc/tally").exists(),
        "purge removes the settings"
    );
    assert!(
        !root.join("var/lib/tally-agent").exists(),
        "and the agent's state"
    );
    assert!(
        root.join("var/lib/tally").exists(),
        "the site's data is kept"
    );
    let said = String::from_utf8_lossy(&purged.stdout);
    assert!(said.contains("kept /var/lib/tally"), "{said}");
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    assert!(!status.contains("Package: tally\n"), "{status}");
}

/// `systemd-analyze verify` on both units as installed, with the root's binary in place of
/// `/usr/bin/tally` (verify checks the executable exists on this system).
fn verify_units(root: &Path) {
    let units = root.join("lib/systemd/system");
    let check = tempfile::tempdir().unwrap();
    for unit in ["tally-server.service", "tally-agent.service"] {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        assert!(text.contains("Restart=on-failure"), "{unit}");
        assert!(text.contains("NoNewPrivileges=yes") && text.contains("ProtectSystem=strict"));
        let bin = root.join("usr/bin/tally");
        let local = text.replace("/usr/bin/tally", bin.to_str().unwrap());
        std::fs::write(check.path().join(unit), local).unwrap();
    }
    let server = std::fs::read_to_string(units.join("tally-server.service")).unwrap();
    assert!(
        server.contains("User=tally"),
        "the server runs as its own user"
    );
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(check.path().join("tally-server.service"))
        .arg(check.path().join("tally-agent.service"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    let said = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = said.lines().filter(|l| l.contains("tally-")).collect();
    assert!(out.status.success() && ours.is_empty(), "{said}");
}

/// Whether this run can install packages: root, with dpkg, objdump and systemd-analyze.
fn needs_root_and_dpkg() -> bool {
    let tools = [
        ("dpkg", "dpkg"),
        ("dpkg-deb", "dpkg"),
        ("objdump", "binutils"),
        ("systemd-analyze", "systemd"),
    ];
    needs::group("the package test", true, &tools)
}
