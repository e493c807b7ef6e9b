//! Pseudonymisation: who used what is personal data in most of our users' jurisdictions. With
//! the site setting on, account and full names are replaced by keyed pseudonyms as they enter
//! (usage uploads, inventories), so the database, its backups, the reports and the exports hold
//! no plain name; an admin holding the site's key can resolve one pseudonym on request (an
//! audited operation).
//!
//! A pseudonym is AES-SIV (RFC 5297) of the name under the site's key: deterministic, so one
//! account is one pseudonym and compliance still counts people; keyed, so without the key a
//! pseudonym cannot be recomputed from a guessed name nor turned back; and reversible with the
//! key, so resolving needs no lookup table in the database that would hold the plain names.

use aes_siv::siv::Aes128Siv;
use aes_siv::KeyInit;

/// Pseudonyms start with this, so they are recognisable in a report or an export.
pub const PREFIX: &str = "pseu-";

/// Bytes of a site's pseudonym key (AES-128-SIV takes a double-length key).
pub const KEY_BYTES: usize = 32;

/// Domain separation: an account and a full name with the same text get different pseudonyms.
const ACCOUNT: &[u8] = b"tally account";
const FULL_NAME: &[u8] = b"tally full name";

/// A site's pseudonym key.
#[derive(Clone)]
pub struct Pseudonyms {
    key: [u8; KEY_BYTES],
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonyms(key hidden)")
    }
}

/// Why a pseudonym cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("{0:?} is not a pseudonym (they start with {PREFIX:?})")]
    NotAPseudonym(String),
    #[error("{0:?} was not made with this site's pseudonym key")]
    WrongKey(String),
}

impl Pseudonyms {
    pub fn new(key: [u8; KEY_BYTES]) -> Self {
        Self { key }
    }

    /// A key read from a file's bytes: exactly [`KEY_BYTES`] bytes, or their hex.
    pub fn from_file_bytes(bytes: &[u8]) -> Option<Self> {
        let text = String::from_utf8_lossy(bytes);
        let raw = match hex::decode(text.trim()) {
            Ok(decoded) if decoded.len() == KEY_BYTES => decoded,
            _ => bytes.to_vec(),
        };
        Some(Self::new(raw.try_into().ok()?))
    }

    fn seal(&self, domain: &[u8], plain: &str) -> String {
        let sealed = Aes128Siv::new(&self.key.into())
            .encrypt([domain], plain.as_bytes())
            .expect("one header is within AES-SIV's limit");
        format!("{PREFIX}{}", hex::encode(sealed))
    }

    fn open(&self, domain: &[u8], pseudonym: &str) -> Result<String, ResolveError> {
        let not = || ResolveError::NotAPseudonym(pseudonym.to_string());
        let sealed = pseudonym.strip_prefix(PREFIX).ok_or_else(not)?;
        let sealed = hex::decode(sealed).map_err(|_| not())?;
        let plain = Aes128Siv::new(&self.key.into())
            .decrypt([domain], &sealed)
            .map_err(|_| ResolveError::WrongKey(pseudonym.to_string()))?;
        String::from_utf8(plain).map_err(|_| ResolveError::WrongKey(pseudonym.to_string()))
    }

    /// The account's pseudonym. A name that already is a pseudonym (an export of pseudonymised
    /// data imported again) is kept as it is.
    pub fn account(&self, account: &str) -> String {
        match self.is_ours(ACCOUNT, account) {
            true => account.to_string(),
            false => self.seal(ACCOUNT, account),
        }
    }

    /// The full name's pseudonym.
    pub fn full_name(&self, name: &str) -> String {
        match self.is_ours(FULL_NAME, name) {
            true => name.to_string(),
            false => self.seal(FULL_NAME, name),
        }
    }

    fn is_ours(&self, domain: &[u8], text: &str) -> bool {
        text.starts_with(PREFIX) && self.open(domain, text).is_ok()
    }

    /// An import's account and full names replaced by their pseudonyms: users, the accounts of
    /// usage sessions, and licenses assigned to a user.
    pub fn import_batch(&self, batch: &mut tally_core::import::Batch) {
        for (_, user) in &mut batch.users {
            user.account = self.account(&user.account);
            user.full_name = user.full_name.as_deref().map(|n| self.full_name(n));
        }
        for (_, session) in &mut batch.sessions {
            session.account = self.account(&session.account).into();
        }
        for (_, license) in &mut batch.licenses {
            if license.assignment_type == tally_core::AssignmentType::User {
                license.assigned_to = license.assigned_to.as_deref().map(|a| self.account(a));
            }
        }
    }

    /// The account behind a pseudonym.
    pub fn resolve_account(&self, pseudonym: &str) -> Result<String, ResolveError> {
        self.open(ACCOUNT, pseudonym)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_account_one_pseudonym_resolvable_only_with_the_key() {
        let site = Pseudonyms::new([7; KEY_BYTES]);
        let other = Pseudonyms::new([8; KEY_BYTES]);
        let p = site.account("CORP\\alice");
        assert!(p.starts_with(PREFIX) && !p.contains("alice"), "{p}");
        assert_eq!(site.account("CORP\\alice"), p, "deterministic");
        assert_ne!(site.account("CORP\\bob"), p);
        assert_ne!(other.account("CORP\\alice"), p, "keyed");
        assert_ne!(site.full_name("CORP\\alice"), p, "separate domains");
        assert_eq!(site.resolve_account(&p).unwrap(), "CORP\\alice");
        assert_eq!(
            site.account(&p),
            p,
            "a pseudonym is not pseudonymised again"
        );
        assert!(matches!(
            other.resolve_account(&p),
            Err(ResolveError::WrongKey(_))
        ));
        assert!(matches!(
            site.resolve_account("alice"),
            Err(ResolveError::NotAPseudonym(_))
        ));
    }

    #[test]
    fn keys_read_from_raw_or_hex_files() {
        let raw = [3u8; KEY_BYTES];
        let a = Pseudonyms::from_file_bytes(&raw).unwrap();
        let b = Pseudonyms::from_file_bytes(format!("{}\n", hex::encode(raw)).as_bytes()).unwrap();
        assert_eq!(a.account("x"), b.account("x"));
        assert!(Pseudonyms::from_file_bytes(b"short").is_none());
    }
}
