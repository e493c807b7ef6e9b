//! Sites and the estate they hold: devices, the users programs run under, the files metered.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::device::NewDevice;
use tally_core::file::{FileInfo, StoredFile};
use tally_core::{Device, Site, SiteCode, User};

use crate::{Page, Result};

#[async_trait]
pub trait SiteStore: Send + Sync {
    async fn put_site(&self, site: &Site) -> Result<()>;
    async fn site(&self, code: &SiteCode) -> Result<Option<Site>>;
    async fn sites(&self) -> Result<Vec<Site>>;

    async fn create_device(&self, device: &NewDevice, at: DateTime<Utc>) -> Result<Device>;
    async fn device(&self, id: i64) -> Result<Option<Device>>;
    async fn devices(&self, page: Page) -> Result<Vec<Device>>;
    async fn touch_device(&self, id: i64, at: DateTime<Utc>) -> Result<()>;

    /// The user's id, creating the user on first sight.
    async fn upsert_user(&self, account: &str, full_name: Option<&str>) -> Result<i64>;
    async fn users(&self, page: Page) -> Result<Vec<User>>;

    /// The file's id, creating the file on first sight.
    async fn upsert_file(&self, file: &FileInfo) -> Result<i64>;
    async fn files(&self, page: Page) -> Result<Vec<StoredFile>>;
}
