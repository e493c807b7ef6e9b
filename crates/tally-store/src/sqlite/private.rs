//! The database file and its directory are created owner-only, whatever the umask: they hold
//! who used what on which machine (personal data) and the hashes of every credential.
//!
//! The file is created (mode 0600) before SQLite opens it, because SQLite creates its `-wal`
//! and `-shm` files with the mode of the main database file (`findCreateFileMode` in its Unix
//! VFS, which also `fchmod`s them past the umask). A directory or file that already exists is
//! left as the administrator set it.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::{Result, StoreError};

/// Creates `path`'s directory (0700) and an empty database file (0600) if they are missing.
pub(super) fn create(path: &Path) -> Result<()> {
    let failed = |at: &Path| {
        let at = at.display().to_string();
        move |source| StoreError::DataDir { path: at, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .and_then(|()| std::fs::set_permissions(dir, Permissions::from_mode(0o700)))
                .map_err(failed(dir))?;
        }
    }
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => {
            std::fs::set_permissions(path, Permissions::from_mode(0o600)).map_err(failed(path))
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(failed(path)(e)),
    }
}
