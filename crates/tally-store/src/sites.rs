//! Sites and the estate they hold: devices, the users programs run under, the files metered.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::device::{MergedDevices, NewDevice};
use tally_core::file::{FileInfo, StoredFile};
use tally_core::{Device, DeviceStatus, Site, SiteCode, User};

use crate::{Page, Result};

/// What [`SiteStore::forget_user`] erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Forgotten {
    /// The user made anonymous, if the account had run a metered program.
    pub user_id: Option<i64>,
    /// Local accounts removed from devices' inventories.
    pub local_accounts: u64,
}

impl Forgotten {
    pub fn anything(&self) -> bool {
        self.user_id.is_some() || self.local_accounts > 0
    }
}

#[async_trait]
pub trait SiteStore: Send + Sync {
    async fn put_site(&self, site: &Site) -> Result<()>;
    async fn site(&self, code: &SiteCode) -> Result<Option<Site>>;
    async fn sites(&self) -> Result<Vec<Site>>;

    async fn create_device(&self, device: &NewDevice, at: DateTime<Utc>) -> Result<Device>;
    async fn device(&self, id: i64) -> Result<Option<Device>>;
    async fn devices(&self, page: Page) -> Result<Vec<Device>>;
    async fn touch_device(&self, id: i64, at: DateTime<Utc>) -> Result<()>;

    /// Sets a device's status, keeping the old one for positions on past days; the device as
    /// stored, or `None` when there is none with this id.
    async fn set_device_status(
        &self,
        id: i64,
        status: DeviceStatus,
        at: DateTime<Utc>,
        audit: crate::AuditOf<'_, Device>,
    ) -> Result<Option<Device>>;
    /// In one transaction: moves everything of device `from` (usage, sessions, inventory and
    /// its history, agents, computer-assigned licenses, monthly summaries) to `into`, and
    /// deletes `from`. `into` keeps its own placement and status, and re-reads its next
    /// inventory in full. `None` when either device does not exist.
    async fn merge_devices(
        &self,
        from: i64,
        into: i64,
        at: DateTime<Utc>,
        audit: crate::AuditOf<'_, MergedDevices>,
    ) -> Result<Option<MergedDevices>>;

    /// The user's id, creating the user on first sight.
    async fn upsert_user(&self, account: &str, full_name: Option<&str>) -> Result<i64>;
    async fn users(&self, page: Page) -> Result<Vec<User>>;
    /// The users whose service-account flag an administrator set (here, or a child site sent
    /// up), by id: what a child sends its parent each sync, without reading every user.
    async fn users_classified_by_admin(&self) -> Result<Vec<User>>;
    /// Sets (`Some`) or clears (`None`) the administrator's classification of `account` as a
    /// service account, which wins over inventory and import; the user as stored, or `None`
    /// when no user has this account.
    async fn set_service_account(
        &self,
        account: &str,
        choice: Option<bool>,
        audit: crate::AuditOf<'_, User>,
    ) -> Result<Option<User>>;
    /// Erases a person, in one transaction with its audit entry: the user `account` becomes
    /// `forgotten-ID` with no full name, and local accounts of that name leave every device's
    /// inventory. Their usage stays with the anonymous user, so compliance still counts it.
    async fn forget_user(
        &self,
        account: &str,
        audit: crate::AuditOf<'_, Forgotten>,
    ) -> Result<Forgotten>;

    /// The file's id, creating the file on first sight.
    async fn upsert_file(&self, file: &FileInfo) -> Result<i64>;
    async fn files(&self, page: Page) -> Result<Vec<StoredFile>>;
}
