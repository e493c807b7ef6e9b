//! Devices' inventory: hardware, installed software with its executables, local accounts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::autorules::ExecutableSeen;
use tally_core::inventory::{DeviceInventory, Installation, SoftwarePeriod};
use tally_core::wire::v1::Inventory;

use crate::Result;

#[async_trait]
pub trait InventoryStore: Send + Sync {
    /// Replaces a device's inventory (hardware, OS, software) in one transaction. Returns false,
    /// storing nothing but the device's last-seen time, when `hash` equals the stored one.
    async fn put_inventory(
        &self,
        device_id: i64,
        inventory: &Inventory,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Packages, on any device, that ship an executable named `file_name` (any case).
    async fn installations(&self, file_name: &str) -> Result<Vec<Installation>>;
    /// A device's installed software (with executables) and local accounts.
    async fn device_inventory(&self, device_id: i64) -> Result<DeviceInventory>;
    /// Every period a package was installed on a device, current and removed, by name then
    /// from when.
    async fn software_history(&self, device_id: i64) -> Result<Vec<SoftwarePeriod>>;
    /// Every executable in inventory with the number of devices shipping it.
    async fn executables_seen(&self) -> Result<Vec<ExecutableSeen>>;
    /// Devices that have reported an inventory.
    async fn inventoried_devices(&self) -> Result<i64>;
}
