//! One index of metering rules, used wherever a program or a stored file is matched against
//! them: the agent's watcher filter and matcher, the server's file→rule mapping, reports and
//! compliance. Rules name executables exactly (no wildcards in file names, see
//! [`RuleSpec::validate`](crate::rules::RuleSpec::validate)), so a lookup by lower-cased name
//! finds every candidate, and only candidates pay for the version-pattern comparison.

use std::collections::{HashMap, HashSet};

use crate::file::FileInfo;
use crate::rules::MeteringRule;

/// Rules keyed by the lower-cased file names and original file names they name.
#[derive(Debug, Clone, Default)]
pub struct RuleIndex {
    rules: Vec<MeteringRule>,
    /// Lower-cased name → positions in `rules` of the rules naming it (either field).
    by_name: HashMap<String, Vec<usize>>,
}

impl RuleIndex {
    /// Indexes `rules` as given; callers that meter only enabled rules pass only those.
    pub fn new(rules: impl IntoIterator<Item = MeteringRule>) -> Self {
        let rules: Vec<MeteringRule> = rules.into_iter().collect();
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (at, rule) in rules.iter().enumerate() {
            let names: HashSet<String> = [&rule.spec.file_name, &rule.spec.original_file_name]
                .into_iter()
                .filter(|n| !n.is_empty())
                .map(|n| n.to_lowercase())
                .collect();
            for name in names {
                by_name.entry(name).or_default().push(at);
            }
        }
        Self { rules, by_name }
    }

    /// The enabled rules of `rules`, indexed.
    pub fn enabled(rules: &[MeteringRule]) -> Self {
        Self::new(rules.iter().filter(|r| r.spec.enabled).cloned())
    }

    pub fn rules(&self) -> &[MeteringRule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every lower-cased name some rule mentions: what a watcher needs to look at.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Whether any rule names `name` (any case) as its file name or original file name: the
    /// cheap test that decides whether a program is worth identifying.
    pub fn mentions(&self, name: &str) -> bool {
        self.by_name.contains_key(&name.to_lowercase())
    }

    /// Whether a program invoked as `file_name` whose real executable is `original` is a
    /// candidate: a rule's file name equals the first, or its original file name the second.
    pub fn is_candidate(&self, file_name: &str, original: &str) -> bool {
        let named = |name: &str, field: fn(&MeteringRule) -> &str| {
            self.candidates(name)
                .any(|r| field(r).eq_ignore_ascii_case(name))
        };
        named(file_name, |r| &r.spec.file_name) || named(original, |r| &r.spec.original_file_name)
    }

    /// The rules that meter a program or file with this identity, in the order given.
    pub fn matching<'a>(&'a self, file: &'a FileInfo) -> impl Iterator<Item = &'a MeteringRule> {
        let mut at: Vec<usize> = [&file.file_name, &file.original_file_name]
            .into_iter()
            .filter(|n| !n.is_empty())
            .filter_map(|n| self.by_name.get(&n.to_lowercase()))
            .flatten()
            .copied()
            .collect();
        at.sort_unstable();
        at.dedup();
        at.into_iter()
            .map(|i| &self.rules[i])
            .filter(|r| r.spec.matches(file))
    }

    /// The ids of the rules that meter `file`.
    pub fn matching_ids(&self, file: &FileInfo) -> Vec<i64> {
        self.matching(file).map(|r| r.id).collect()
    }

    fn candidates<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a MeteringRule> {
        self.by_name
            .get(&name.to_lowercase())
            .into_iter()
            .flatten()
            .map(|&i| &self.rules[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::file;
    use crate::rules::{RuleOrigin, RuleSpec};
    use crate::site::SiteCode;

    fn rule(id: i64, file_name: &str, original: &str, version: &str) -> MeteringRule {
        MeteringRule {
            id,
            spec: RuleSpec {
                file_name: file_name.into(),
                original_file_name: original.into(),
                file_version: version.into(),
                ..RuleSpec::named(format!("r{id}"))
            },
            site_code: SiteCode::parse("S01").unwrap(),
            origin: RuleOrigin::Manual,
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn finds_what_a_scan_of_every_rule_finds() {
        let rules = vec![
            rule(1, "vim", "", ""),
            rule(2, "", "python3.11", "3.11.*"),
            rule(3, "Python3", "", "2.*"),
            rule(4, "python3", "python3.11", ""),
            rule(5, "code", "", ""),
        ];
        let index = RuleIndex::new(rules.clone());
        let files = [
            file("vim", "vim.basic", "9.0"),
            file("python3", "python3.11", "3.11.2"),
            file("PYTHON3", "python3.12", "2.7"),
            file("python3.11", "python3.11", "3.10"),
            file("emacs", "emacs", "29"),
        ];
        for f in &files {
            let scanned: Vec<i64> = rules
                .iter()
                .filter(|r| r.spec.matches(f))
                .map(|r| r.id)
                .collect();
            assert_eq!(index.matching_ids(f), scanned, "{f:?}");
        }
    }

    #[test]
    fn candidates_and_names_follow_the_rules_fields() {
        let index = RuleIndex::new([rule(1, "Vim", "", ""), rule(2, "", "python3.11", "")]);
        assert!(index.is_candidate("vim", "vim.basic"));
        assert!(index.is_candidate("python3", "Python3.11"));
        // An original name that only a rule's *file name* mentions is not a candidate.
        assert!(!index.is_candidate("nvim", "vim"));
        assert!(index.mentions("VIM"));
        let mut names: Vec<&str> = index.names().collect();
        names.sort();
        assert_eq!(names, ["python3.11", "vim"]);
    }

    #[test]
    fn enabled_leaves_out_disabled_rules() {
        let mut off = rule(2, "emacs", "", "");
        off.spec.enabled = false;
        let index = RuleIndex::enabled(&[rule(1, "vim", "", ""), off]);
        assert_eq!(index.rules().len(), 1);
        assert!(!index.mentions("emacs"));
    }
}
