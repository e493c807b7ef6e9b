//! Files: the executables that metering rules match (the seed's `FileID` / `SMS_ProductFileInfo`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The identity of one executable as the agent saw it. Two different versions of the same
/// program are two files, so usage is attributed to the exact version that ran.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct FileInfo {
    /// The executable's name as started, e.g. `python3`.
    pub file_name: String,
    /// The real file behind links, e.g. `python3.11`; on Windows the PE header's original name.
    pub original_file_name: String,
    /// Version of the package owning the file, or empty when unknown.
    pub version: String,
    pub product_name: String,
    pub publisher: String,
    /// Language identifier; 65535 means "any", as in Configuration Manager.
    pub language: i32,
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
