//! Which metering rules meter each stored file, kept in memory so the summarisation tasks and
//! the usage read API's `rule=` do not match every stored file against every rule on every
//! use. Every stored file is read once, when the mapping is first needed; after that:
//!
//! - a file is mapped when ingest first stores it, or when a record names a file the mapping
//!   has not seen (stored by another replica), or when a `rule=` read catches up with the
//!   files stored since its last one;
//! - before each use the stored rules are compared with the ones mapped, rule by rule (so a
//!   rule changed through another replica, or by a direct store call, is noticed too), and
//!   only the rules added, edited or removed have their entries changed: an added or edited
//!   rule is matched against the files that carry one of its names, nothing else.
//!
//! So the mapping is always what a scan of every file against every rule would give, at the
//! cost of the files' matching fields held in memory.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tally_core::file::StoredFile;
use tally_core::{FileInfo, MeteringRule, RuleIndex, UsageRecord};
use tally_store::{Page, Store};

use crate::{Result, ServiceError};

/// Files read per query while mapping.
const FILES_PAGE: i64 = 1000;

/// How long after a file's id is handed out its row is surely committed. On PostgreSQL ids
/// come from a sequence, so a file with a lower id can become visible after one with a
/// higher id; a catch-up re-reads the files above what was read this long ago, so such a
/// file is still found. Storing a file is one short statement.
const SETTLE: Duration = Duration::from_secs(60);

/// The file → rule mapping of one server process.
#[derive(Default)]
pub struct FileRules {
    state: tokio::sync::Mutex<Option<Mapping>>,
    full_builds: AtomicU64,
    files_rematched: AtomicU64,
}

/// How much matching the mapping has done since the process started: what shows that a rule
/// change costs the files of that rule, not every file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MappingWork {
    /// Times every stored file was read and matched against every rule.
    pub full_builds: u64,
    /// Files matched against one added or edited rule.
    pub files_rematched: u64,
}

/// Every rule (enabled or not: a disabled rule's past usage is still summarised) and the rules
/// of every file seen; a file no rule meters maps to an empty list.
struct Mapping {
    /// Every rule, to map a newly seen file.
    index: RuleIndex,
    /// The rules as mapped, by id, to tell which stored ones changed.
    rules: HashMap<i64, MeteringRule>,
    /// The fields a rule matches on of every stored file seen.
    files: HashMap<i64, FileInfo>,
    /// Lower-cased file name or original file name → the files carrying it.
    by_name: HashMap<String, Vec<i64>>,
    /// Every file id seen (an id with no stored file too) → the ids of its rules, ascending.
    rules_of_file: HashMap<i64, Vec<i64>>,
    files_of_rule: HashMap<i64, BTreeSet<i64>>,
    scan: Scan,
}

/// What the `rule=` catch-ups have read: below `settled` every stored file is mapped.
#[derive(Default)]
struct Scan {
    settled: i64,
    /// When each read since began, and the highest file id it saw.
    reads: VecDeque<(Instant, i64)>,
}

/// The lower-cased names a rule or a file is matched by.
fn names<'a>(a: &'a str, b: &'a str) -> impl Iterator<Item = String> + 'a {
    let b = Some(b).filter(|b| !b.eq_ignore_ascii_case(a));
    std::iter::once(a)
        .chain(b)
        .filter(|n| !n.is_empty())
        .map(str::to_lowercase)
}

impl Mapping {
    fn new(rules: Vec<MeteringRule>) -> Self {
        Self {
            index: RuleIndex::new(rules.clone()),
            rules: rules.into_iter().map(|r| (r.id, r)).collect(),
            files: HashMap::new(),
            by_name: HashMap::new(),
            rules_of_file: HashMap::new(),
            files_of_rule: HashMap::new(),
            scan: Scan::default(),
        }
    }

    /// Maps a file not seen before; a file's row never changes, so a seen one is left as is.
    fn map(&mut self, id: i64, file: &FileInfo) {
        if self.files.contains_key(&id) {
            return;
        }
        let rules = self.index.matching_ids(file);
        for rule in &rules {
            self.files_of_rule.entry(*rule).or_default().insert(id);
        }
        for name in names(&file.file_name, &file.original_file_name) {
            self.by_name.entry(name).or_default().push(id);
        }
        let kept = FileInfo {
            product_name: String::new(),
            publisher: String::new(),
            ..file.clone()
        };
        self.files.insert(id, kept);
        self.rules_of_file.insert(id, rules);
    }

    /// Brings the mapping to `stored` rules: the entries of each rule added, edited or removed
    /// are redone, no other. Returns how many files were matched again.
    fn follow(&mut self, stored: Vec<MeteringRule>) -> u64 {
        let changed: Vec<&MeteringRule> = stored
            .iter()
            .filter(|r| self.rules.get(&r.id) != Some(*r))
            .collect();
        let kept: BTreeSet<i64> = stored.iter().map(|r| r.id).collect();
        let removed = self.rules.keys().filter(|id| !kept.contains(*id));
        let redo: Vec<i64> = removed
            .copied()
            .chain(changed.iter().map(|r| r.id))
            .collect();
        if redo.is_empty() {
            return 0;
        }
        redo.iter().for_each(|&id| self.unmap_rule(id));
        let rematched = changed.iter().map(|r| self.map_rule(r)).sum();
        tracing::debug!(
            rules = redo.len(),
            rematched,
            "file-to-rule mapping followed rule changes"
        );
        self.index = RuleIndex::new(stored.clone());
        self.rules = stored.into_iter().map(|r| (r.id, r)).collect();
        rematched
    }

    fn unmap_rule(&mut self, rule: i64) {
        for file in self.files_of_rule.remove(&rule).unwrap_or_default() {
            if let Some(rules) = self.rules_of_file.get_mut(&file) {
                rules.retain(|&r| r != rule);
            }
        }
    }

    /// Matches `rule` against the files carrying one of its names; how many those were.
    fn map_rule(&mut self, rule: &MeteringRule) -> u64 {
        let spec = &rule.spec;
        let mut candidates: Vec<i64> = names(&spec.file_name, &spec.original_file_name)
            .filter_map(|n| self.by_name.get(&n))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        for &file in &candidates {
            if !spec.matches(&self.files[&file]) {
                continue;
            }
            self.files_of_rule.entry(rule.id).or_default().insert(file);
            let rules = self.rules_of_file.entry(file).or_default();
            if let Err(at) = rules.binary_search(&rule.id) {
                rules.insert(at, rule.id);
            }
        }
        candidates.len() as u64
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

    /// Maps every file stored above `scan.settled`; after it, the files up to the highest id
    /// a read at least [`SETTLE`] older than this one saw are all mapped.
    async fn catch_up(&mut self, store: &dyn Store) -> Result<()> {
        let started = Instant::now();
        let from = self.scan.settled;
        let mut highest = from;
        every_file(store, from, |f| {
            self.map(f.id, &f.info);
            highest = f.id;
        })
        .await?;
        let scan = &mut self.scan;
        while let Some(&(at, seen)) = scan.reads.front() {
            if started.duration_since(at) < SETTLE {
                break;
            }
            scan.settled = scan.settled.max(seen);
            scan.reads.pop_front();
        }
        scan.reads.push_back((started, highest));
        Ok(())
    }

    /// The first rule (by id) called `name`, in any case.
    fn rule_named(&self, name: &str) -> Option<&MeteringRule> {
        let mut rules = self.index.rules().iter();
        rules.find(|r| r.spec.name.eq_ignore_ascii_case(name))
    }
}

impl FileRules {
    /// A file ingest has just stored (or found stored). Mapped now when the mapping is built
    /// and free; otherwise it is mapped when a record first needs it, so an upload never
    /// waits for the mapping.
    pub fn file_stored(&self, id: i64, file: &FileInfo) {
        if let Ok(mut state) = self.state.try_lock() {
            if let Some(mapping) = state.as_mut() {
                mapping.map(id, file);
            }
        }
    }

    /// How much matching the mapping has done.
    pub fn work(&self) -> MappingWork {
        MappingWork {
            full_builds: self.full_builds.load(Ordering::Relaxed),
            files_rematched: self.files_rematched.load(Ordering::Relaxed),
        }
    }

    /// Brings the mapping up to the stored rules: built from every stored file the first
    /// time, afterwards only the entries of the rules that changed redone.
    pub async fn refresh(&self, store: &dyn Store) -> Result<()> {
        let mut state = self.state.lock().await;
        self.refreshed(store, &mut state).await?;
        Ok(())
    }

    async fn refreshed<'a>(
        &self,
        store: &dyn Store,
        state: &'a mut Option<Mapping>,
    ) -> Result<&'a mut Mapping> {
        let rules = store.rules().await?;
        if state.is_some() {
            let mapping = state.as_mut().expect("checked");
            let rematched = mapping.follow(rules);
            self.files_rematched.fetch_add(rematched, Ordering::Relaxed);
            return Ok(mapping);
        }
        let mut mapping = Mapping::new(rules);
        every_file(store, 0, |f| mapping.map(f.id, &f.info)).await?;
        self.full_builds.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            rules = mapping.rules.len(),
            files = mapping.files.len(),
            "file-to-rule mapping built"
        );
        Ok(state.insert(mapping))
    }

    /// The rules of each file `records` name (files no rule meters left out). Call
    /// [`FileRules::refresh`] first to pick up rule changes; this maps only unseen files.
    pub async fn of_records(
        &self,
        store: &dyn Store,
        records: &[UsageRecord],
    ) -> Result<HashMap<i64, Vec<i64>>> {
        let files: Vec<i64> = records.iter().map(|r| r.file_id).collect();
        self.of_files(store, &files).await
    }

    /// [`FileRules::of_records`] for the files `files` names (each any number of times).
    pub async fn of_files(
        &self,
        store: &dyn Store,
        files: &[i64],
    ) -> Result<HashMap<i64, Vec<i64>>> {
        let mut state = self.state.lock().await;
        if state.is_none() {
            self.refreshed(store, &mut state).await?;
        }
        let mapping = state.as_mut().expect("built above");
        // Each distinct file once: its rules if mapped, else noted as missing.
        let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut missing = Vec::new();
        for &file in files {
            if out.contains_key(&file) {
                continue;
            }
            let rules = match mapping.rules_of_file.get(&file) {
                Some(rules) => rules.clone(),
                None => {
                    missing.push(file);
                    Vec::new()
                }
            };
            out.insert(file, rules);
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

    /// Ids of the stored files the rule named `rule_name` (any case; the first by id when
    /// rules of several sites share it) meters, ascending: the usage read API's `rule=`.
    /// The rules are refreshed and the files stored since the last such read mapped first.
    pub async fn files_metered_by(&self, store: &dyn Store, rule_name: &str) -> Result<Vec<i64>> {
        let mut state = self.state.lock().await;
        let mapping = self.refreshed(store, &mut state).await?;
        let rule = mapping.rule_named(rule_name).map(|r| r.id).ok_or_else(|| {
            ServiceError::NotFound(format!("no rule named {rule_name:?}; see tally rules list"))
        })?;
        mapping.catch_up(store).await?;
        let files = mapping.files_of_rule.get(&rule);
        Ok(files.into_iter().flatten().copied().collect())
    }
}

/// Calls `each` with every stored file with an id above `after`, by id, a page at a time.
async fn every_file(
    store: &dyn Store,
    after: i64,
    mut each: impl FnMut(&StoredFile),
) -> Result<()> {
    let mut page = Page {
        after,
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
