//! The site's pseudonym key file, shared by `tally server`/`tally up` and `tally import` so both
//! store the same pseudonyms (docs/privacy.md).

use anyhow::{Context, Result};
use tally_service::privacy::Pseudonyms;

/// The site's pseudonym key from `path`, made (32 random bytes, hex, owner-only) when missing.
pub fn load_or_create(path: &std::path::Path) -> Result<Pseudonyms> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if !path.exists() {
        let mut key = [0u8; tally_service::privacy::KEY_BYTES];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating the pseudonym key {}", path.display()))?;
        writeln!(file, "{}", hex::encode(key))?;
        file.sync_all()?;
        tracing::warn!(key = %path.display(), "created a new pseudonym key: back it up; without it no pseudonym can be resolved, and a new key gives everyone new pseudonyms");
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading the pseudonym key {}", path.display()))?;
    Pseudonyms::from_file_bytes(&bytes).with_context(|| {
        format!(
            "{} is not a pseudonym key: it must hold 32 bytes or their 64 hex digits",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::load_or_create;

    #[test]
    fn a_pseudonym_key_is_made_owner_only_once_and_then_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pseudonym.key");
        let first = load_or_create(&path).unwrap().account("ann");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(&path).unwrap().account("ann"), first);
        std::fs::write(&path, "short").unwrap();
        let e = load_or_create(&path).err().unwrap().to_string();
        assert!(e.contains("not a pseudonym key"), "{e}");
    }
}
