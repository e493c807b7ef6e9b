//! Sites: one server each, arranged in a hierarchy (seed 000: data is "propagated up through
//! the site hierarchy to any parent site").

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ValidationError;

/// A three-character site code, as Configuration Manager uses (e.g. `S01`, `CEN`).
///
/// Kept upper-case so that `s01` and `S01` cannot become two sites.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "S01")]
pub struct SiteCode(String);

impl SiteCode {
    pub fn parse(code: &str) -> Result<Self, ValidationError> {
        let ok = code.len() == 3 && code.chars().all(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err(ValidationError::new(
                "site_code",
                format!(
                    "{code:?} is not a site code; use exactly three letters or digits, e.g. S01"
                ),
            ));
        }
        Ok(Self(code.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SiteCode {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SiteCode> for String {
    fn from(code: SiteCode) -> Self {
        code.0
    }
}

impl std::fmt::Display for SiteCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A site server. A site without a parent is the central site of its hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Site {
    pub code: SiteCode,
    pub name: String,
    /// Shown in report headers instead of the server's name when set (seed 003's "alias").
    pub alias: Option<String>,
    pub parent: Option<SiteCode>,
}

impl Site {
    /// A central site (no parent) with no alias: what a server, an import or a test sets up
    /// when it starts from an empty store.
    pub fn central(code: SiteCode, name: impl Into<String>) -> Self {
        Self {
            code,
            name: name.into(),
            alias: None,
            parent: None,
        }
    }

    /// A site with no alias below `parent`: a test's or an import's child site.
    pub fn below(code: SiteCode, name: impl Into<String>, parent: SiteCode) -> Self {
        Self {
            parent: Some(parent),
            ..Self::central(code, name)
        }
    }
}
