//! Which metering rules meter each stored file, kept in memory so the summarisation tasks do
//! not match every stored file against every rule on every run. A file is mapped when ingest
//! first stores it; the whole mapping is rebuilt when the rules change. Before each use the
//! stored rules are compared with the ones mapped (a rule changed through another replica, or
//! by a direct store call, is noticed too), and a record naming a file the mapping has not seen
//! yet (stored by another replica) has its file read and mapped then. So the mapping is always
//! what a scan of every file against every rule would give.

use std::collections::HashMap;

use tally_core::file::StoredFile;
use tally_core::{FileInfo, RuleIndex, UsageRecord};
use tally_store::{Page, Store};

use crate::{Result, ServiceError};

/// Files read per query while mapping.
const FILES_PAGE: i64 = 1000;

/// The file → rule mapping of one server process.
#[derive(Default)]
pub struct FileRules {
    state: tokio::sync::Mutex<Option<Mapping>>,
}

/// Every rule (enabled or not: a disabled rule's past usage is still summarised) and the rules
/// of every file seen; a file no rule meters maps to an empty list.
struct Mapping {
    index: RuleIndex,
    rules_of_file: HashMap<i64, Vec<i64>>,
}

impl Mapping {
    fn map(&mut self, id: i64, file: &FileInfo) {
        self.rules_of_file.insert(id, self.index.matching_ids(file));
    }

    /// Maps the files with these ids, reading them a page at a time from the lowest; an id
    /// with no stored file maps to no rule.
    async fn map_missing(&mut self, store: &dyn Store, mut missing: Vec<i64>) -> Result<()> {
        missing.sort_unstable();
        missing.dedup();
        let mut next = 0;
        while let Some(&first) = missing.get(next) {
            let page = Page {
                after: first - 1,
                limit: FILES_PAGE,
            };
            let files = store.files(page).await?;
            for f in &files {
                self.map(f.id, &f.info);
            }
            let reached = match files.last() {
                Some(last) if files.len() as i64 == FILES_PAGE => last.id,
                _ => i64::MAX,
            };
            while missing.get(next).is_some_and(|&id| id <= reached) {
                self.rules_of_file.entry(missing[next]).or_default();
                next += 1;
            }
        }
        Ok(())
    }
}

impl FileRules {
    /// A file ingest has just stored (or found stored). Mapped now when the mapping is built
    /// and free; otherwise it is mapped when a record first needs it, so an upload never
    /// waits for a rebuild.
    pub fn file_stored(&self, id: i64, file: &FileInfo) {
        if let Ok(mut state) = self.state.try_lock() {
            if let Some(mapping) = state.as_mut() {
                mapping.map(id, file);
            }
        }
    }

    /// Rebuilds the mapping if the stored rules differ from those it was built with (or it was
    /// never built): every stored file, a page at a time, against the new index.
    pub async fn refresh(&self, store: &dyn Store) -> Result<()> {
        let mut state = self.state.lock().await;
        let rules = store.rules().await?;
        if state
            .as_ref()
            .is_some_and(|m| m.index.rules() == rules.as_slice())
        {
            return Ok(());
        }
        let mut mapping = Mapping {
            index: RuleIndex::new(rules),
            rules_of_file: HashMap::new(),
        };
        every_file(store, |f| mapping.map(f.id, &f.info)).await?;
        tracing::debug!(
            rules = mapping.index.rules().len(),
            files = mapping.rules_of_file.len(),
            "file-to-rule mapping rebuilt"
        );
        *state = Some(mapping);
        Ok(())
    }

    /// The rules of each file `records` name (files no rule meters left out). Call
    /// [`FileRules::refresh`] first to pick up rule changes; this maps only unseen files.
    pub async fn of_records(
        &self,
        store: &dyn Store,
        records: &[UsageRecord],
    ) -> Result<HashMap<i64, Vec<i64>>> {
        let mut state = self.state.lock().await;
        if state.is_none() {
            drop(state);
            self.refresh(store).await?;
            state = self.state.lock().await;
        }
        let mapping = state.as_mut().expect("built above");
        // Each distinct file once: its rules if mapped, else noted as missing.
        let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut missing = Vec::new();
        for r in records {
            if out.contains_key(&r.file_id) {
                continue;
            }
            let rules = match mapping.rules_of_file.get(&r.file_id) {
                Some(rules) => rules.clone(),
                None => {
                    missing.push(r.file_id);
                    Vec::new()
                }
            };
            out.insert(r.file_id, rules);
        }
        if !missing.is_empty() {
            mapping.map_missing(store, missing.clone()).await?;
            for id in missing {
                out.insert(id, mapping.rules_of_file[&id].clone());
            }
        }
        out.retain(|_, rules| !rules.is_empty());
        Ok(out)
    }
}

/// Ids of the stored files the rule named `rule_name` (any case) meters, read from every
/// stored file: a one-off question (the usage read API's `rule=`), answered exactly.
pub async fn files_metered_by(store: &dyn Store, rule_name: &str) -> Result<Vec<i64>> {
    let rule = store
        .rules()
        .await?
        .into_iter()
        .find(|r| r.spec.name.eq_ignore_ascii_case(rule_name))
        .ok_or_else(|| {
            ServiceError::NotFound(format!("no rule named {rule_name:?}; see tally rules list"))
        })?;
    let index = RuleIndex::new([rule]);
    let mut ids = Vec::new();
    every_file(store, |f| {
        if index.matching(&f.info).next().is_some() {
            ids.push(f.id);
        }
    })
    .await?;
    Ok(ids)
}

/// Calls `each` with every stored file, by id, a page at a time.
async fn every_file(store: &dyn Store, mut each: impl FnMut(&StoredFile)) -> Result<()> {
    let mut page = Page {
        after: 0,
        limit: FILES_PAGE,
    };
    loop {
        let files = store.files(page).await?;
        let Some(last) = files.last() else {
            return Ok(());
        };
        page.after = last.id;
        files.iter().for_each(&mut each);
    }
}
