//! File identity of an executable: its names, and version, product and publisher from the
//! package that owns it (dpkg, else rpm), looked up once per path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use tally_core::file::{FileInfo, ANY_LANGUAGE};

use crate::procfs::file_name;

/// Package facts for a path; empty strings where no package owns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Package {
    name: String,
    version: String,
    maintainer: String,
}

/// Caches package lookups per executable path; they cost a `dpkg-query` (or `rpm`) each.
#[derive(Default)]
pub struct Identities {
    packages: HashMap<PathBuf, Package>,
}

impl Identities {
    /// The identity of a process started as `invoked_as` running `exe`.
    pub fn identify(&mut self, invoked_as: &str, exe: &Path) -> FileInfo {
        let package = self.packages.entry(exe.to_path_buf()).or_insert_with(|| {
            dpkg_owner(exe)
                .or_else(|| rpm_owner(exe, None))
                .unwrap_or_default()
        });
        FileInfo {
            file_name: invoked_as.to_string(),
            original_file_name: file_name(exe),
            version: package.version.clone(),
            product_name: package.name.clone(),
            publisher: package.maintainer.clone(),
            language: ANY_LANGUAGE,
        }
    }
}

/// The dpkg package owning `path` (tried also under `/usr` merged paths), with its version and
/// maintainer; `None` without dpkg or for files no package owns.
fn dpkg_owner(path: &Path) -> Option<Package> {
    let mut candidates = vec![path.to_path_buf()];
    if let Ok(rest) = path.strip_prefix("/usr") {
        candidates.push(Path::new("/").join(rest));
    }
    let name = candidates.iter().find_map(|p| {
        let out = Command::new("dpkg-query").arg("-S").arg(p).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().next()?;
        let (pkgs, _) = line.split_once(": ")?;
        let first = pkgs.split(", ").next()?;
        Some(first.split(':').next()?.to_string())
    })?;
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}\t${Maintainer}", &name])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (version, maintainer) = text.split_once('\t').unwrap_or((&text, ""));
    Some(Package {
        name,
        version: version.trim().to_string(),
        maintainer: maintainer.trim().to_string(),
    })
}

/// What `rpm -qf` prints per owning package: name, version-release, vendor.
const RPM_OWNER_FORMAT: &str = "%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{VENDOR}\\n";

/// The rpm package owning `path`, with its version-release and vendor (as the inventory reads
/// them); `None` without rpm or for files no package owns. `dbpath` names another database
/// than the system's (tests).
fn rpm_owner(path: &Path, dbpath: Option<&Path>) -> Option<Package> {
    let mut rpm = Command::new("rpm");
    if let Some(db) = dbpath {
        rpm.arg("--dbpath").arg(db);
    }
    let out = rpm
        .args(["-qf", "--qf", RPM_OWNER_FORMAT])
        .arg(path)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    parse_rpm_owner(&String::from_utf8_lossy(&out.stdout))
}

/// The first owner in `rpm -qf --qf RPM_OWNER_FORMAT` output; a vendor of `(none)` is none.
fn parse_rpm_owner(text: &str) -> Option<Package> {
    let mut fields = text.lines().next()?.split('\t');
    let name = fields.next().filter(|n| !n.is_empty())?.to_string();
    let version = fields.next().unwrap_or_default().to_string();
    let vendor = fields.next().unwrap_or_default();
    Some(Package {
        name,
        version,
        maintainer: if vendor == "(none)" { "" } else { vendor }.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packaged_binaries_get_their_package_version() {
        let mut ids = Identities::default();
        let ls = ids.identify("ls", Path::new("/usr/bin/ls"));
        assert_eq!(ls.file_name, "ls");
        if Path::new("/var/lib/dpkg/status").exists() {
            assert_eq!(ls.product_name, "coreutils");
            assert!(!ls.version.is_empty());
        }
        let none = ids.identify("x", Path::new("/tmp/not-packaged-binary"));
        assert_eq!(
            (none.product_name.as_str(), none.version.as_str()),
            ("", "")
        );
        assert_eq!(none.original_file_name, "not-packaged-binary");
    }

    #[test]
    fn rpm_owner_output_is_parsed_first_owner_first() {
        let p = parse_rpm_owner("bash\t5.2.15-3.el9\tRed Hat, Inc.\nother\t1-1\t(none)\n").unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("bash", "5.2.15-3.el9")
        );
        assert_eq!(p.maintainer, "Red Hat, Inc.");
        let none = parse_rpm_owner("x\t1-1\t(none)\n").unwrap();
        assert_eq!(none.maintainer, "");
        assert_eq!(parse_rpm_owner(""), None);
    }

    /// Debian's `rpm` on a database of its own: a package built here with rpmbuild, recorded
    /// with `--justdb`, owns a file the test wrote; `rpm -qf` finds its name, version-release
    /// and vendor. Skipped, named, without rpm; required under CI=true.
    #[test]
    fn rpm_owner_reads_a_real_rpm_database() {
        let have = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
        if !(have("rpm") && have("rpmbuild")) {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "CI=true and rpm or rpmbuild is missing: apt-get install rpm"
            );
            eprintln!("SKIPPED: rpm file identity needs rpm and rpmbuild (apt-get install rpm)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let owned = root.join("opt/tallytest/bin/tallyprog");
        std::fs::create_dir_all(owned.parent().unwrap()).unwrap();
        std::fs::write(&owned, "#!/bin/sh\n").unwrap();
        let spec = root.join("tallyprog.spec");
        std::fs::write(
            &spec,
            format!(
                "Name: tallyprog\nVersion: 2.5\nRelease: 3\nVendor: Example Corp\nLicense: MIT\n\
             Summary: t\nBuildArch: noarch\n%description\nt\n%install\n\
             mkdir -p %{{buildroot}}{dir}\ncp {file} %{{buildroot}}{dir}/\n%files\n{file}\n",
                dir = owned.parent().unwrap().display(),
                file = owned.display(),
            ),
        )
        .unwrap();
        let run = |cmd: &mut Command| {
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let top = format!("_topdir {}", root.join("build").display());
        run(Command::new("rpmbuild")
            .args(["-bb", "--define", &top])
            .arg(&spec));
        let package = root.join("build/RPMS/noarch/tallyprog-2.5-3.noarch.rpm");
        let db = root.join("db");
        run(Command::new("rpm").arg("--dbpath").arg(&db).arg("--initdb"));
        run(Command::new("rpm")
            .arg("--dbpath")
            .arg(&db)
            .args(["-i", "--justdb", "--nodeps"])
            .arg(&package));
        let found = rpm_owner(&owned, Some(&db)).expect("rpm -qf finds the owner");
        assert_eq!(found.name, "tallyprog");
        assert_eq!(found.version, "2.5-3");
        assert_eq!(found.maintainer, "Example Corp");
        assert_eq!(rpm_owner(&root.join("tallyprog.spec"), Some(&db)), None);
    }
}
