//! Devices changed by an administrator: a status set by hand (retired, in stock, …) and two
//! devices of one machine merged into one. Each change is stored with its audit entry.

use chrono::Utc;
use tally_core::device::MergedDevices;
use tally_core::{Device, DeviceStatus};
use tally_store::DeviceInventory;

use crate::audit::{entry, OrMissing};
use crate::{Result, Service, ServiceError};

fn no_device(id: i64) -> String {
    format!("no device {id}; see tally devices")
}

/// Sets device `id`'s status, as `actor`; the status before is kept so that positions on
/// earlier days still see it.
pub async fn set_status(
    service: &Service,
    actor: &str,
    id: i64,
    status: DeviceStatus,
) -> Result<Device> {
    let audit = |d: &Device| {
        let detail = serde_json::json!({"host_name": d.host_name, "status": d.status});
        entry(actor, "device.status", format!("device:{}", d.id), detail)
    };
    let store = service.store();
    (store
        .set_device_status(id, status, Utc::now(), Some(&audit))
        .await)
        .or_missing(|| no_device(id))
}

/// Merges device `from` into `into`, as `actor`: two records of one machine (enrolled twice
/// before Tally matched machines, or imported and enrolled) become one, so nothing it runs or
/// has installed is counted twice.
pub async fn merge(service: &Service, actor: &str, from: i64, into: i64) -> Result<MergedDevices> {
    if from == into {
        return Err(ServiceError::Invalid(format!(
            "into: device {from} cannot be merged into itself; name two devices"
        )));
    }
    let audit = |m: &MergedDevices| entry(actor, "device.merge", format!("device:{into}"), m);
    let store = service.store();
    let merged = store
        .merge_devices(from, into, Utc::now(), Some(&audit))
        .await?;
    // The store says only that one of the two is missing; the answer names which.
    match merged {
        Some(m) => Ok(m),
        None if store.device(from).await?.is_none() => Err(ServiceError::NotFound(no_device(from))),
        None => Err(ServiceError::NotFound(no_device(into))),
    }
}

/// What device `id` has installed and its local accounts; a device that does not exist is
/// not found (the store answers an empty inventory for it).
pub async fn inventory(service: &Service, id: i64) -> Result<DeviceInventory> {
    let store = service.store();
    store
        .device(id)
        .await
        .or_missing(|| format!("no device {id}; list devices with GET /api/v1/devices"))?;
    Ok(store.device_inventory(id).await?)
}
