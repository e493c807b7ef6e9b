//! Turning an agent's upload into stored rows: files and users are resolved to ids through
//! in-memory caches, so a steady stream of records from known programs costs no dimension
//! queries at all. A file resolved here is also handed to the file → rule mapping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tally_core::wire::v1::UsageRecordV1;
use tally_core::FileInfo;
use tally_store::prelude::*;
use tally_store::NewUsageRecord;

use crate::file_rules::FileRules;
use crate::privacy::Pseudonyms;

/// Entries kept per cache before it is cleared; far above the distinct files and accounts of a
/// large site, and bounded so memory cannot grow without end.
const CACHE_LIMIT: usize = 200_000;

/// Id caches shared by every request on this replica. Ids never change once assigned, so a
/// cache can be stale only by missing entries, never by holding wrong ones.
#[derive(Default)]
pub struct DimensionCache {
    files: Mutex<HashMap<FileInfo, i64>>,
    users: Mutex<HashMap<String, i64>>,
    file_rules: Arc<FileRules>,
}

impl DimensionCache {
    /// A cache that maps each file it stores into `file_rules`.
    pub fn new(file_rules: Arc<FileRules>) -> Self {
        Self {
            file_rules,
            ..Self::default()
        }
    }

    async fn file_id(&self, store: &dyn Store, file: &FileInfo) -> tally_store::Result<i64> {
        if let Some(&id) = self.files.lock().expect("cache lock").get(file) {
            return Ok(id);
        }
        let id = store.upsert_file(file).await?;
        self.file_rules.file_stored(id, file);
        let mut files = self.files.lock().expect("cache lock");
        if files.len() >= CACHE_LIMIT {
            files.clear();
        }
        files.insert(file.clone(), id);
        Ok(id)
    }

    /// The record's user's id; under pseudonyms, the user stored is the pseudonym (the cache,
    /// in memory only, is keyed by the name as sent).
    async fn user_id(
        &self,
        store: &dyn Store,
        r: &UsageRecordV1,
        pseudonyms: Option<&Pseudonyms>,
    ) -> tally_store::Result<i64> {
        if let Some(&id) = self.users.lock().expect("cache lock").get(&r.user.account) {
            return Ok(id);
        }
        let full_name = r.user.full_name.as_deref();
        let id = match pseudonyms {
            Some(p) => {
                let full_name = full_name.map(|n| p.full_name(n));
                store
                    .upsert_user(&p.account(&r.user.account), full_name.as_deref())
                    .await?
            }
            None => store.upsert_user(&r.user.account, full_name).await?,
        };
        let mut users = self.users.lock().expect("cache lock");
        if users.len() >= CACHE_LIMIT {
            users.clear();
        }
        users.insert(r.user.account.clone(), id);
        Ok(id)
    }

    /// Resolves every record's file and user and attaches the device.
    pub async fn resolve(
        &self,
        store: &dyn Store,
        device_id: i64,
        records: &[UsageRecordV1],
        pseudonyms: Option<&Pseudonyms>,
    ) -> tally_store::Result<Vec<NewUsageRecord>> {
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let file_id = self.file_id(store, &r.file).await?;
            let user_id = self.user_id(store, r, pseudonyms).await?;
            out.push(r.to_record(device_id, file_id, user_id));
        }
        Ok(out)
    }
}
