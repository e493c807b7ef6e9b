//! Metering rules and how a running program is matched against them.
//!
//! Semantics follow Configuration Manager (`SMS_MeteredProductRule`): a rule names a file name,
//! an original file name, or both, compared without case and without wildcards; a program
//! matches when its file name equals the rule's file name *or* its original file name equals the
//! rule's original file name; the file version must then match the rule's version pattern, in
//! which `*` stands for any run of characters and `?` for one character. Product name is
//! descriptive only.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::file::{FileInfo, ANY_LANGUAGE};
use crate::site::SiteCode;
use crate::ValidationError;

/// Whether a person wrote the rule or the automatic-rule task derived it from inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleOrigin {
    Manual,
    Automatic,
}

impl RuleOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleOrigin::Manual => "manual",
            RuleOrigin::Automatic => "automatic",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manual" => Some(RuleOrigin::Manual),
            "automatic" => Some(RuleOrigin::Automatic),
            _ => None,
        }
    }
}

/// The fields an administrator sets on a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuleSpec {
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub file_name: String,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub original_file_name: String,
    /// Version pattern with `*` and `?`; empty or `*` matches every version.
    #[serde(default)]
    #[schema(max_length = 128)]
    pub file_version: String,
    /// 65535 = any language.
    #[serde(default = "any_language")]
    #[schema(minimum = 0, maximum = 65535)]
    pub language: i32,
    #[serde(default)]
    #[schema(max_length = 255)]
    pub product_name: String,
    #[serde(default)]
    #[schema(max_length = 4096)]
    pub comment: String,
    /// Also meter on every child site. Off by default: seed 000 says rules are "active only on
    /// the site where they were created" unless this is asked for.
    #[serde(default)]
    pub apply_to_child_sites: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn any_language() -> i32 {
    ANY_LANGUAGE
}

fn yes() -> bool {
    true
}

impl RuleSpec {
    /// The rule a request naming only `name` makes (the serde defaults): no file names, any
    /// version and language, metered only on its own site, enabled.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            file_name: String::new(),
            original_file_name: String::new(),
            file_version: String::new(),
            language: any_language(),
            product_name: String::new(),
            comment: String::new(),
            apply_to_child_sites: false,
            enabled: yes(),
        }
    }

    /// Checks what Configuration Manager checks: a name, at least one of the two file names,
    /// no wildcards in file names, and a well-formed version pattern.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.name.trim().is_empty() {
            return Err(ValidationError::new("name", "a rule needs a name"));
        }
        if self.file_name.trim().is_empty() && self.original_file_name.trim().is_empty() {
            return Err(ValidationError::new(
                "file_name",
                "give a file name, an original file name, or both",
            ));
        }
        for (field, value) in [
            ("file_name", &self.file_name),
            ("original_file_name", &self.original_file_name),
        ] {
            if value.contains(['*', '?', '/', '\\']) {
                return Err(ValidationError::new(
                    field,
                    format!("{value:?} may not contain wildcards or path separators; name the executable exactly, e.g. code"),
                ));
            }
        }
        if self.file_version.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "file_version",
                "the version pattern may hold only printable characters with * and ? wildcards",
            ));
        }
        use crate::limits::{check_name, check_range, check_text};
        use crate::limits::{MAX_LANGUAGE, MAX_NAME, MAX_TEXT, MAX_VERSION};
        check_name("name", &self.name, MAX_NAME)?;
        check_name("file_name", &self.file_name, MAX_NAME)?;
        check_name("original_file_name", &self.original_file_name, MAX_NAME)?;
        check_name("file_version", &self.file_version, MAX_VERSION)?;
        check_range("language", self.language, 0..=MAX_LANGUAGE)?;
        check_name("product_name", &self.product_name, MAX_NAME)?;
        check_text("comment", &self.comment, MAX_TEXT)
    }

    /// Whether a program with this file identity is metered by this rule.
    pub fn matches(&self, file: &FileInfo) -> bool {
        let by_name =
            !self.file_name.is_empty() && self.file_name.eq_ignore_ascii_case(&file.file_name);
        let by_original = !self.original_file_name.is_empty()
            && self
                .original_file_name
                .eq_ignore_ascii_case(&file.original_file_name);
        let language_ok = self.language == ANY_LANGUAGE || self.language == file.language;
        (by_name || by_original)
            && language_ok
            && version_matches(&self.file_version, &file.version)
    }
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MeteringRule {
    pub id: i64,
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// The site that made the rule; it applies there and, when `apply_to_child_sites`, below.
    pub site_code: SiteCode,
    pub origin: RuleOrigin,
    pub updated_at: DateTime<Utc>,
}

/// Matches a version against a pattern with `*` (any run) and `?` (one character), ignoring
/// case. An empty pattern and `*` match every version, including an unknown (empty) one.
pub fn version_matches(pattern: &str, version: &str) -> bool {
    if pattern.is_empty() {
        return true;
    }
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let v: Vec<char> = version.to_lowercase().chars().collect();
    wildcard(&p, &v)
}

/// Iterative glob match with single-star backtracking: linear in practice, never exponential.
fn wildcard(p: &[char], v: &[char]) -> bool {
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        // A star first: compared as a literal, it would match a `*` in the version and lose
        // its place to backtrack to (the `version_match` fuzz target found this).
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A file with no product or publisher, in any language; the rule index's tests use it too.
    pub(crate) fn file(name: &str, original: &str, version: &str) -> FileInfo {
        FileInfo {
            file_name: name.into(),
            original_file_name: original.into(),
            version: version.into(),
            product_name: String::new(),
            publisher: String::new(),
            language: ANY_LANGUAGE,
        }
    }

    fn rule(name: &str, original: &str, version: &str) -> RuleSpec {
        RuleSpec {
            file_name: name.into(),
            original_file_name: original.into(),
            file_version: version.into(),
            apply_to_child_sites: true,
            ..RuleSpec::named("r")
        }
    }

    #[test]
    fn version_wildcards() {
        assert!(version_matches("", ""));
        assert!(version_matches("*", "1.2.3"));
        assert!(version_matches("16.*", "16.0.1"));
        assert!(!version_matches("16.*", "17.0"));
        assert!(!version_matches("16.*", "16"));
        assert!(version_matches("1.?", "1.5"));
        assert!(!version_matches("1.?", "1.55"));
        assert!(version_matches("*.1", "3.11.1"));
        assert!(version_matches("a*b*c", "axxbyyc"));
        assert!(!version_matches("a*b*c", "axxbyy"));
        assert!(version_matches("1.2.3", "1.2.3"));
        assert!(!version_matches("1.2.3", "1.2.4"));
        assert!(version_matches("RC*", "rc1"));
    }

    /// Found by the `version_match` fuzz target (fuzz/regressions/version_match/): a `*` in
    /// the version was taken for the pattern's star, which then could not stretch.
    #[test]
    fn a_star_in_the_version_is_an_ordinary_character() {
        assert!(version_matches("*", "*1"));
        assert!(version_matches("a*b*", "a*b*\0c"));
        assert!(version_matches("1.*", "1.*-beta"));
        assert!(!version_matches("1.*x", "1.*-beta"));
    }

    #[test]
    fn file_name_or_original_name() {
        let r = rule("code", "", "");
        assert!(r.matches(&file("Code", "code-real", "1.0")));
        assert!(!r.matches(&file("vim", "vim.basic", "9")));
        let r = rule("", "python3.11", "3.*");
        assert!(r.matches(&file("python3", "python3.11", "3.11.2")));
        assert!(!r.matches(&file("python3", "python3.11", "2.7")));
        let r = rule("python3", "python3.12", "");
        assert!(
            r.matches(&file("python3", "python3.11", "3.11")),
            "either name suffices"
        );
    }

    #[test]
    fn language_must_match_unless_any() {
        let mut r = rule("code", "", "");
        r.language = 1033;
        let mut f = file("code", "code", "1");
        assert!(!r.matches(&f));
        f.language = 1033;
        assert!(r.matches(&f));
    }

    #[test]
    fn validation() {
        assert!(rule("code", "", "1.*").validate().is_ok());
        assert_eq!(rule("", "", "").validate().unwrap_err().field, "file_name");
        assert_eq!(
            rule("co*", "", "").validate().unwrap_err().field,
            "file_name"
        );
        assert_eq!(
            rule("", "a?b", "").validate().unwrap_err().field,
            "original_file_name"
        );
        let mut r = rule("code", "", "");
        r.name = " ".into();
        assert_eq!(r.validate().unwrap_err().field, "name");
    }

    #[test]
    fn wildcard_agrees_with_a_reference_matcher() {
        // Exhaustive over short strings on a small alphabet, against a recursive definition.
        fn reference(p: &[char], v: &[char]) -> bool {
            match (p.first(), v.first()) {
                (None, None) => true,
                (Some('*'), _) => reference(&p[1..], v) || (!v.is_empty() && reference(p, &v[1..])),
                (Some('?'), Some(_)) => reference(&p[1..], &v[1..]),
                (Some(a), Some(b)) if a == b => reference(&p[1..], &v[1..]),
                _ => false,
            }
        }
        fn strings(alphabet: &[char], max: usize) -> Vec<Vec<char>> {
            let mut out = vec![vec![]];
            let mut frontier = vec![vec![]];
            for _ in 0..max {
                let mut next = vec![];
                for s in &frontier {
                    for &c in alphabet {
                        let mut t: Vec<char> = s.clone();
                        t.push(c);
                        next.push(t);
                    }
                }
                out.extend(next.iter().cloned());
                frontier = next;
            }
            out
        }
        let patterns = strings(&['a', 'b', '*', '?'], 4);
        let values = strings(&['a', 'b'], 5);
        for p in &patterns {
            for v in &values {
                assert_eq!(wildcard(p, v), reference(p, v), "pattern {p:?} value {v:?}");
            }
        }
    }
}
