//! Files: the executables that metering rules match (the seed's `FileID` / `SMS_ProductFileInfo`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The identity of one executable as the agent saw it. Two different versions of the same
/// program are two files, so usage is attributed to the exact version that ran.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct FileInfo {
    /// The executable's name as started, e.g. `python3`.
    #[schema(max_length = 255)]
    pub file_name: String,
    /// The real file behind links, e.g. `python3.11`; on Windows the PE header's original name.
    #[schema(max_length = 255)]
    pub original_file_name: String,
    /// Version of the package owning the file, or empty when unknown.
    #[schema(max_length = 128)]
    pub version: String,
    #[schema(max_length = 255)]
    pub product_name: String,
    #[schema(max_length = 255)]
    pub publisher: String,
    /// Language identifier; 65535 means "any", as in Configuration Manager.
    #[schema(minimum = 0, maximum = 65535)]
    pub language: i32,
}

impl FileInfo {
    /// A file known only by its name and version (its original name the same, no product or
    /// publisher, any language): what generated usage and tests are made of.
    pub fn named(name: &str, version: &str) -> Self {
        FileInfo {
            file_name: name.into(),
            original_file_name: name.into(),
            version: version.into(),
            product_name: String::new(),
            publisher: String::new(),
            language: ANY_LANGUAGE,
        }
    }

    /// Every name bounded and printable (`crate::limits`), the language a 16-bit id.
    pub fn validate(&self) -> Result<(), crate::ValidationError> {
        use crate::limits::{check_name, check_range, MAX_LANGUAGE, MAX_NAME, MAX_VERSION};
        check_name("file.file_name", &self.file_name, MAX_NAME)?;
        check_name(
            "file.original_file_name",
            &self.original_file_name,
            MAX_NAME,
        )?;
        check_name("file.version", &self.version, MAX_VERSION)?;
        check_name("file.product_name", &self.product_name, MAX_NAME)?;
        check_name("file.publisher", &self.publisher, MAX_NAME)?;
        check_range("file.language", self.language, 0..=MAX_LANGUAGE)
    }
}

/// A file with the id the site database gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StoredFile {
    /// The seed's `FileID`.
    pub id: i64,
    #[serde(flatten)]
    pub info: FileInfo,
}

/// Configuration Manager's language id for "any language".
pub const ANY_LANGUAGE: i32 = 65535;
