//! The organisation tree that devices, users and licenses hang on.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One node of the organisation tree; a node without a parent is a root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrgNode {
    pub id: i64,
    pub name: String,
    pub parent: Option<i64>,
}
