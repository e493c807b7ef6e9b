//! The site's pseudonym key file, shared by `tally server`/`tally up` and `tally import` so both
//! store the same pseudonyms (docs/privacy.md).

use anyhow::{Context, Result};
use tally_service::privacy::Pseudonyms;

/// The site's pseudonym key from `path`, made (32 random bytes, hex, owner-only) when missing.
pub fn load_or_create(path: &std::path::Path) -> Result<Pseudonyms> {
    if make_key_file(path, "pseudonym key")? {
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

/// The site's Ed25519 signing key from `path` (`site.key` in the data directory), made at the
/// first start: 32 random bytes as hex, readable by its owner only.
pub fn site_key(path: &std::path::Path) -> Result<tally_core::certificates::SigningKey> {
    if make_key_file(path, "site key")? {
        tracing::info!(key = %path.display(), "created this site's signing key (tally site key prints its public key)");
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the site key {}", path.display()))?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| {
            format!(
                "{} is not a site key: it must hold 64 hex digits",
                path.display()
            )
        })?;
    Ok(tally_core::certificates::SigningKey::from_bytes(&bytes))
}

/// Makes a key file of 32 random bytes in hex, owner-only, when `path` does not exist; whether
/// it made one.
fn make_key_file(path: &std::path::Path, what: &str) -> Result<bool> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    {
        let mut key = [0u8; tally_service::privacy::KEY_BYTES];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating the {what} {}", path.display()))?;
        writeln!(file, "{}", hex::encode(key))?;
        file.sync_all()?;
    }
    Ok(true)
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
