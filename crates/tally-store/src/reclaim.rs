//! The reclaim campaign's list: installations marked proposed, confirmed and removed.

use async_trait::async_trait;
use tally_core::reclaim::{NewReclaimItem, ReclaimItem, ReclaimState, ReclaimStep};

use crate::{AuditNote, AuditOf, Result};

#[async_trait]
pub trait ReclaimStore: Send + Sync {
    /// Every item, the newest proposal first.
    async fn reclaim_items(&self) -> Result<Vec<ReclaimItem>>;

    /// Puts an installation on the list as proposed by `step`, with its audit entry;
    /// [`crate::StoreError::Conflict`] when it is on the list already.
    async fn propose_reclaim(
        &self,
        item: &NewReclaimItem,
        step: &ReclaimStep,
        audit: AuditOf<'_, ReclaimItem>,
    ) -> Result<ReclaimItem>;

    /// Moves item `id` from `from` to the next state, stamped with `step`, with its audit
    /// entry; false (nothing written) when there is no such item in state `from`.
    async fn advance_reclaim(
        &self,
        id: i64,
        from: ReclaimState,
        step: &ReclaimStep,
        audit: AuditNote<'_>,
    ) -> Result<bool>;
}
