//! The site hierarchy's wire: how a child joins its parent, what travels up (its subtree's
//! sites, its rules, devices with inventory and agent health, usage records) and down (the
//! ancestors' rules that apply to child sites), and the identities that keep every row's origin.
//!
//! Seed 000: rules are "active only on the site where they were created" unless copied "to
//! all child sites", and metering data "is summarized … and propagated up through the site
//! hierarchy to any parent site", so the central site holds the whole hierarchy's usage.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::limits::{check_name, check_opt_name, MAX_ID, MAX_NAME};
use crate::rules::MeteringRule;
use crate::site::{Site, SiteCode};
use crate::wire::v1::{Inventory, UsageRecordV1};
use crate::{Device, ValidationError};

/// Most devices one sync batch carries: a snapshot is a whole inventory, so batches of
/// devices stay far below the request-body limit.
pub const MAX_SYNC_DEVICES: usize = 200;
/// Most usage records one sync batch carries (the agent API's own batch limit).
pub const MAX_SYNC_RECORDS: usize = crate::wire::v1::MAX_BATCH_RECORDS;
/// Most sites and rules a batch may describe: a subtree is hundreds of sites at most.
pub const MAX_SYNC_SITES: usize = 10_000;
pub const MAX_SYNC_RULES: usize = 100_000;
/// Most hand-classified accounts a batch may carry.
pub const MAX_SYNC_USERS: usize = 100_000;
/// Largest decompressed sync body; the compressed one is bounded by the server's body limit.
pub const MAX_SYNC_BYTES: u64 = 256 * 1024 * 1024;

/// A child invited to join this site, and whether it has (its credential's hash stays in the
/// store, never here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SiteLink {
    pub code: SiteCode,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The join secret is refused after this.
    pub expires_at: DateTime<Utc>,
    pub joined_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A stored usage record as up-sync reads it: its place in the watermark order, the device
/// it belongs to (with the key it was received under, if any) and the record as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedRecord {
    pub time_serial: i64,
    pub id: i64,
    pub device: Device,
    pub sync_key: Option<String>,
    pub record: UsageRecordV1,
}

/// A child's first call: the site code it was invited as and the one-time secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub site_code: SiteCode,
    #[schema(min_length = 1, max_length = 255)]
    pub secret: String,
}

/// The parent's answer to a join: the child's credential (kept by the child in its data
/// directory, 0600; only its hash is stored at the parent) and who the parent is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Joined {
    pub site_code: SiteCode,
    pub parent: SiteCode,
    pub credential: String,
}

/// A site as its subtree's sync reports it, with the link status its parent records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SiteState {
    pub code: SiteCode,
    pub name: String,
    pub parent: Option<SiteCode>,
    /// When the site last synced with its parent successfully.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// When the site last had nothing left to send (lag is measured from here).
    pub caught_up_at: Option<DateTime<Utc>>,
    /// Records the site still held unsent after its last sync.
    pub backlog: i64,
}

/// An agent's health as its site last knew it; `id` is site-qualified (`S01/…`) so agents of
/// different sites never collide at a parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentHealth {
    pub id: String,
    pub enrolled_at: DateTime<Utc>,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub agent_version: Option<String>,
    pub dropped_records: i64,
    pub revoked: bool,
}

/// Who a device is across sites: its origin-independent key ([`device_key`]) and what a
/// parent shows for it before its first snapshot arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceRef {
    pub key: String,
    /// The leaf site where its agent reports.
    pub site_code: SiteCode,
    pub host_name: String,
    pub machine_id: Option<String>,
}

/// A device as its site holds it: identity, facts, inventory and its agents' health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceSnapshot {
    pub device: DeviceRef,
    pub fqdn: Option<String>,
    pub serial: Option<String>,
    pub last_seen: Option<DateTime<Utc>>,
    pub inventory: Inventory,
    pub agents: Vec<AgentHealth>,
}

/// Usage records of one device, in the order the child stored them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceUsage {
    pub device: DeviceRef,
    pub records: Vec<UsageRecordV1>,
}

/// One batch from a child: its subtree's sites, the rules they own, changed devices and the
/// next usage records after the child's watermark. Sending it twice stores it once: sites and
/// rules are replaced whole, devices are matched by key, records by their natural key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncUp {
    #[schema(min_length = 1, max_length = 128)]
    pub batch_id: String,
    pub sites: Vec<SiteState>,
    pub rules: Vec<MeteringRule>,
    pub devices: Vec<DeviceSnapshot>,
    pub usage: Vec<DeviceUsage>,
    /// Accounts an administrator classified by hand in the subtree (`tally users set`), which
    /// win over inventory at the parent too: every one, each batch, so an account the child no
    /// longer sends was reset to automatic there and the parent resets it too.
    #[serde(default)]
    pub users: Vec<UserClass>,
    /// Records the child still holds unsent after this batch.
    pub backlog: i64,
}

/// An administrator's service-account choice for an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserClass {
    pub account: String,
    pub service_account: bool,
}

/// The parent's answer: its ancestry (so the child's policy can inherit along it) and the
/// rules of every ancestor that apply to the child, which the child keeps read-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncDown {
    /// The parent and its ancestors, nearest first.
    pub ancestors: Vec<Site>,
    pub rules: Vec<MeteringRule>,
    /// Records newly stored from this batch (0 on a replay).
    pub stored: u64,
}

/// A device's identity across the hierarchy: its `/etc/machine-id` when known (so a machine
/// that moves to another site, re-enrolling there, stays one device), else its origin site
/// and its id there. A device received from a child keeps the key it came with.
pub fn device_key(device: &Device, received_key: Option<&str>) -> String {
    if let Some(key) = received_key {
        return key.to_string();
    }
    match &device.machine_id {
        Some(m) if !m.is_empty() => format!("machine:{m}"),
        _ => format!("site:{}:{}", device.site_code, device.id),
    }
}

/// An agent id as a parent keeps it: qualified with its site once, at the first hop.
pub fn qualified_agent_id(site: &SiteCode, id: &str) -> String {
    if id.contains('/') {
        id.to_string()
    } else {
        format!("{site}/{id}")
    }
}

/// `code` and every site below it in `sites` (cycles cut).
pub fn subtree(code: &SiteCode, sites: &[Site]) -> Vec<SiteCode> {
    let mut found = vec![code.clone()];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i].clone();
        for s in sites {
            if s.parent.as_ref() == Some(&parent) && !found.contains(&s.code) {
                found.push(s.code.clone());
            }
        }
        i += 1;
    }
    found
}

/// The ancestors of `code` in `sites`, nearest first (cycles cut).
pub fn ancestors(code: &SiteCode, sites: &[Site]) -> Vec<Site> {
    let mut found: Vec<Site> = Vec::new();
    let mut next = sites
        .iter()
        .find(|s| &s.code == code)
        .and_then(|s| s.parent.clone());
    while let Some(p) = next {
        if &p == code || found.iter().any(|s| s.code == p) {
            break;
        }
        let Some(site) = sites.iter().find(|s| s.code == p) else {
            break;
        };
        next = site.parent.clone();
        found.push(site.clone());
    }
    found
}

/// Whether `claimed` may be written by child `child` at a parent that knows `sites`: a site
/// the parent does not know yet, or one already in the child's subtree. A child can never
/// claim its parent, its parent's ancestors or a sibling's sites.
pub fn may_claim(child: &SiteCode, claimed: &SiteCode, sites: &[Site]) -> bool {
    !sites.iter().any(|s| &s.code == claimed) || subtree(child, sites).contains(claimed)
}

impl SyncUp {
    /// Sizes bounded, names printable, every record valid at `now`.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), ValidationError> {
        check_name("batch_id", &self.batch_id, MAX_ID)?;
        let records: usize = self.usage.iter().map(|u| u.records.len()).sum();
        for (field, n, max) in [
            ("sites", self.sites.len(), MAX_SYNC_SITES),
            ("rules", self.rules.len(), MAX_SYNC_RULES),
            ("devices", self.devices.len(), MAX_SYNC_DEVICES),
            ("usage", records, MAX_SYNC_RECORDS),
            ("users", self.users.len(), MAX_SYNC_USERS),
        ] {
            if n > max {
                return Err(ValidationError::new(
                    field,
                    format!("at most {max} per batch"),
                ));
            }
        }
        for s in &self.sites {
            check_name("sites.name", &s.name, MAX_NAME)?;
        }
        for d in &self.devices {
            d.device.validate()?;
            check_opt_name("devices.fqdn", d.fqdn.as_deref(), MAX_NAME)?;
            check_opt_name("devices.serial", d.serial.as_deref(), MAX_NAME)?;
            d.inventory.validate()?;
            for a in &d.agents {
                check_name("devices.agents.id", &a.id, MAX_NAME)?;
            }
        }
        for u in &self.users {
            check_name("users.account", &u.account, MAX_NAME)?;
        }
        for u in &self.usage {
            u.device.validate()?;
            for r in &u.records {
                r.validate(now)?;
            }
        }
        Ok(())
    }
}

impl DeviceRef {
    fn validate(&self) -> Result<(), ValidationError> {
        check_name("device.key", &self.key, MAX_NAME + 16)?;
        check_name("device.host_name", &self.host_name, MAX_NAME)?;
        check_opt_name("device.machine_id", self.machine_id.as_deref(), MAX_NAME)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A site named after its code, below `parent` when given; the policy tests build their
    /// trees with it too.
    pub(crate) fn site(code: &str, parent: Option<&str>) -> Site {
        Site {
            code: SiteCode::parse(code).unwrap(),
            name: code.into(),
            alias: None,
            parent: parent.map(|p| SiteCode::parse(p).unwrap()),
        }
    }

    fn code(c: &str) -> SiteCode {
        SiteCode::parse(c).unwrap()
    }

    fn tree() -> Vec<Site> {
        vec![
            site("CEN", None),
            site("P01", Some("CEN")),
            site("P02", Some("CEN")),
            site("S01", Some("P01")),
        ]
    }

    #[test]
    fn a_subtree_holds_the_site_and_everything_below_it() {
        let sites = tree();
        assert_eq!(
            subtree(&code("P01"), &sites),
            vec![code("P01"), code("S01")]
        );
        assert_eq!(subtree(&code("CEN"), &sites).len(), 4);
        assert_eq!(subtree(&code("S01"), &sites), vec![code("S01")]);
    }

    #[test]
    fn ancestors_come_nearest_first_and_cycles_end() {
        let sites = tree();
        let up: Vec<SiteCode> = ancestors(&code("S01"), &sites)
            .into_iter()
            .map(|s| s.code)
            .collect();
        assert_eq!(up, vec![code("P01"), code("CEN")]);
        let looped = vec![site("AAA", Some("BBB")), site("BBB", Some("AAA"))];
        assert_eq!(ancestors(&code("AAA"), &looped).len(), 1);
    }

    #[test]
    fn a_child_claims_only_its_own_subtree_or_new_sites() {
        let sites = tree();
        assert!(may_claim(&code("P01"), &code("S01"), &sites));
        assert!(may_claim(&code("P01"), &code("S02"), &sites));
        assert!(!may_claim(&code("P01"), &code("P02"), &sites));
        assert!(!may_claim(&code("P01"), &code("CEN"), &sites));
    }

    #[test]
    fn agent_ids_are_qualified_once() {
        let once = qualified_agent_id(&code("S01"), "abc");
        assert_eq!(once, "S01/abc");
        assert_eq!(qualified_agent_id(&code("P01"), &once), "S01/abc");
    }
}
