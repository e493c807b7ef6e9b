//! The site hierarchy: the links a parent keeps for its children, the sync status of every
//! site below, copied rules, devices received from children, and a child's own watermarks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tally_core::hierarchy::{AgentHealth, DeviceRef, SiteLink, SiteState, SyncedRecord};
use tally_core::{MeteringRule, SiteCode};

use crate::Result;

/// What a parent stores of a device a child sent, besides its key and inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedDevice<'a> {
    pub device: &'a DeviceRef,
    pub fqdn: Option<&'a str>,
    pub serial: Option<&'a str>,
    pub os: Option<&'a str>,
    pub last_seen: Option<DateTime<Utc>>,
}

/// A device as the up-sync reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceForSync {
    pub device: tally_core::Device,
    /// The key the device was received under from a child, if it was.
    pub sync_key: Option<String>,
    /// Bumped by the database whenever a row of the device's inventory (installed software,
    /// executables, local accounts) is written, whoever writes it: the sync reads a device's
    /// inventory only when this or the device's row changed since it last went up.
    pub inventory_generation: i64,
}

#[async_trait]
pub trait HierarchyStore: Send + Sync {
    /// Invites a child: stores the hash of its one-time join secret. False, storing nothing,
    /// when that code has joined already and is not revoked.
    async fn invite_site(
        &self,
        link: &SiteLink,
        secret_hash: &str,
        audit: crate::AuditOf<'_, SiteLink>,
    ) -> Result<bool>;
    /// Spends a join secret: when `invite_hash` is the live, unexpired invite of `code`, the
    /// credential's hash replaces it and the child's site is registered under `parent`, in one
    /// transaction. `None` when there is no such invite.
    async fn join_site(
        &self,
        code: &SiteCode,
        invite_hash: &str,
        credential_hash: &str,
        parent: &SiteCode,
        at: DateTime<Utc>,
    ) -> Result<Option<SiteLink>>;
    /// The joined, unrevoked link of `code` whose credential hashes to `hash`.
    async fn site_link_by_credential(
        &self,
        code: &SiteCode,
        hash: &str,
    ) -> Result<Option<SiteLink>>;
    async fn site_links(&self) -> Result<Vec<SiteLink>>;
    /// Revokes a child's link: its credential and any unspent invite stop working.
    async fn revoke_site_link(
        &self,
        code: &SiteCode,
        at: DateTime<Utc>,
        audit: crate::AuditNote<'_>,
    ) -> Result<bool>;

    /// Every site with its sync status, by code.
    async fn site_states(&self) -> Result<Vec<SiteState>>;
    /// Per site: devices whose agents report there, and their raw usage records held here.
    async fn site_counts(&self) -> Result<Vec<(SiteCode, i64, i64)>>;
    /// Stores sites as a child's sync describes them (name, parent, status), adding new ones.
    /// A sync time the child does not send (its own row's, which only its parent observes)
    /// keeps the stored one, so a reader never sees a child's lag vanish mid-sync.
    async fn receive_sites(&self, sites: &[SiteState]) -> Result<()>;
    /// Applies the service-account classifications a direct child sent: `classes` is every one
    /// its administrators (and its own children) set, so each is stored as that child's, and
    /// those stored as that child's that it no longer sends were reset to automatic there and
    /// are reset here (an administrator's here are left alone). One transaction; returns how
    /// many were reset.
    async fn receive_user_classes(
        &self,
        child: &SiteCode,
        classes: &[tally_core::hierarchy::UserClass],
    ) -> Result<u64>;
    /// Records a direct child's sync: now, and what it still holds.
    async fn record_sync(&self, code: &SiteCode, at: DateTime<Utc>, backlog: i64) -> Result<()>;

    /// Makes the rules owned by `owners` (sites other than this one) exactly `rules`, matched
    /// by their id at the owning site: new ones added, changed ones updated, missing ones
    /// deleted, in one transaction. Returns how many rows changed.
    async fn replace_copied_rules(
        &self,
        owners: &[SiteCode],
        rules: &[MeteringRule],
        at: DateTime<Utc>,
    ) -> Result<u64>;

    /// The device a child sent, found by its key (or its machine-id), created when new; its
    /// site follows the most recent sighting, so a device moving sites stays one device.
    async fn receive_device(&self, device: &ReceivedDevice<'_>, at: DateTime<Utc>) -> Result<i64>;
    /// Upserts the health of a received device's agents (site-qualified ids; they have no
    /// secret and cannot authenticate here).
    async fn receive_agents(&self, device_id: i64, agents: &[AgentHealth]) -> Result<()>;
    /// Devices in id order after `after` with the key each was received under, if any, and
    /// their inventory generation.
    async fn devices_for_sync(&self, after: i64, limit: i64) -> Result<Vec<DeviceForSync>>;
    /// Usage records after `(serial, id)` in that order, with device, file and user.
    async fn usage_for_sync(&self, after: (i64, i64), limit: i64) -> Result<Vec<SyncedRecord>>;
    /// Records after `(serial, id)`: what up-sync has still to send.
    async fn usage_unsent(&self, after: (i64, i64)) -> Result<i64>;

    /// A child's sync watermark or setting by name.
    async fn sync_value(&self, name: &str) -> Result<Option<String>>;
    async fn set_sync_value(&self, name: &str, value: &str) -> Result<()>;
    /// The digest of each device's snapshot as the parent last acknowledged it.
    async fn sent_digests(&self) -> Result<Vec<(i64, String)>>;
    async fn set_sent_digests(&self, digests: &[(i64, String)]) -> Result<()>;
}
