//! File identity of an executable: its names, and version, product and publisher from the
//! package that owns it (dpkg), looked up once per path.

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

/// Caches package lookups per executable path; they cost a `dpkg-query` each.
#[derive(Default)]
pub struct Identities {
    packages: HashMap<PathBuf, Package>,
}

impl Identities {
    /// The identity of a process started as `invoked_as` running `exe`.
    pub fn identify(&mut self, invoked_as: &str, exe: &Path) -> FileInfo {
        let package = self
            .packages
            .entry(exe.to_path_buf())
            .or_insert_with(|| dpkg_owner(exe).unwrap_or_default());
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
}
