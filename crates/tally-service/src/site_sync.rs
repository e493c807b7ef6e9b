//! The child's side of the site hierarchy: joining the parent once, then a loop that sends
//! this site's subtree up in bounded, gzip-compressed batches and applies what comes down.
//!
//! Up, each batch carries: the subtree's sites with their sync status, the rules they own
//! (so the parent's summaries cover them), devices whose snapshot changed since the parent
//! last acknowledged it, and the next usage records after the watermark `(TimeSerial, id)`.
//! The watermark and the digests advance only once the parent answered, so a batch lost on
//! the way (or cut by a `kill -9`) is sent again, and the parent stores it once: sites and
//! rules are replaced whole, devices matched by key, records by their natural key. Records
//! received from children below are stored here under new `TimeSerial`s, so they go up the
//! same way: an intermediate site forwards its children's data.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tally_core::hierarchy::{
    device_key, qualified_agent_id, subtree, AgentHealth, DeviceRef, DeviceSnapshot, DeviceUsage,
    JoinRequest, Joined, SiteState, SyncDown, SyncUp, SyncedRecord, UserClass, MAX_SYNC_DEVICES,
};
use tally_core::wire::v1::{Hardware, Inventory};
use tally_core::{Device, SiteCode};

use crate::{Result, Service, ServiceError};

/// Usage records per batch: about 400 bytes each as JSON, a few hundred KB compressed.
pub const BATCH_RECORDS: i64 = 5_000;
/// Batches one sync sends at most before it yields to the next interval.
const MAX_ROUNDS: usize = 1_000;
/// The usage watermark's name in `sync_state`: `SERIAL:ID` of the last record the parent took.
pub const USAGE_SENT: &str = "usage_sent";

/// Where the parent is and how this site reaches it.
#[derive(Debug, Clone)]
pub struct ParentLink {
    pub url: String,
    /// PEM CA trusted for the parent's certificate besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// The one-time join secret; needed only until the credentials file exists.
    pub join_secret: Option<String>,
    /// `parent.json` in the data directory: the site credential (0600).
    pub credentials_file: PathBuf,
    pub interval: Duration,
}

/// What joining gave this site; kept with mode 0600.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub parent_url: String,
    pub parent: SiteCode,
    pub site_code: SiteCode,
    pub credential: String,
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synced {
    pub batches: usize,
    pub records: usize,
    pub devices: usize,
    pub backlog: i64,
}

fn failed(what: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("{what}: {e}"))
}

/// The site's credentials: read from the file, or got by joining with the secret (once).
pub async fn credentials(service: &Service, link: &ParentLink) -> Result<Credentials> {
    if let Ok(text) = std::fs::read_to_string(&link.credentials_file) {
        return serde_json::from_str(&text)
            .map_err(|e| failed(&format!("{}", link.credentials_file.display()), e));
    }
    let Some(secret) = &link.join_secret else {
        return Err(ServiceError::Invalid(format!(
            "this site has not joined its parent yet: give the join secret (--parent-token) \
             from `tally sites invite --code {}` on the parent",
            service.site()
        )));
    };
    let http = tally_api::http_client(Duration::from_secs(60), link.ca_file.as_deref())
        .map_err(|e| failed("the parent's client", e))?;
    let req = JoinRequest {
        site_code: service.site().clone(),
        secret: secret.clone(),
    };
    let url = format!("{}/api/v1/site-sync/join", link.url.trim_end_matches('/'));
    let resp = (http.post(&url).json(&req).send().await)
        .map_err(|e| failed(&format!("{url} cannot be reached"), e))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(ServiceError::Invalid(format!(
            "the parent refused to let site {} join ({status}): {text}",
            service.site()
        )));
    }
    let joined: Joined = resp
        .json()
        .await
        .map_err(|e| failed("the join answer", e))?;
    let creds = Credentials {
        parent_url: link.url.clone(),
        parent: joined.parent,
        site_code: joined.site_code,
        credential: joined.credential,
    };
    let text = serde_json::to_string_pretty(&creds).expect("credentials serialise");
    write_private(&link.credentials_file, &text)
        .map_err(|e| failed(&format!("{}", link.credentials_file.display()), e))?;
    tracing::info!(parent = %creds.parent, "joined the parent site");
    Ok(creds)
}

/// Writes `text` to a file only its owner can read (0600 from its creation).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Syncs with the parent every `link.interval` for as long as the service lives; failures
/// (the parent down, a network cut) are logged and retried at the next interval, nothing
/// unsent is dropped meanwhile.
pub async fn run(service: std::sync::Weak<Service>, link: ParentLink, creds: Credentials) {
    let http = match tally_api::http_client(Duration::from_secs(120), link.ca_file.as_deref()) {
        Ok(http) => http,
        Err(e) => return tracing::error!(error = %e, "site sync cannot start"),
    };
    loop {
        let Some(service) = service.upgrade() else {
            return;
        };
        match sync(&service, &http, &creds).await {
            Ok(s) if s.records + s.devices > 0 => {
                tracing::info!(
                    records = s.records,
                    devices = s.devices,
                    batches = s.batches,
                    "synced with the parent site"
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, parent = %creds.parent_url, "site sync failed; retrying")
            }
        }
        drop(service);
        tokio::time::sleep(link.interval).await;
    }
}

/// Sends everything unsent, batch after batch, and applies the parent's answers.
pub async fn sync(
    service: &Service,
    http: &reqwest::Client,
    creds: &Credentials,
) -> Result<Synced> {
    let mut done = Synced::default();
    for _ in 0..MAX_ROUNDS {
        let batch = next_batch(service).await?;
        let (records, devices) = (batch.records, batch.digests.len());
        let down = send(http, creds, &batch.up).await?;
        apply_down(service, &creds.parent, &down).await?;
        let store = service.store();
        store.set_sent_digests(&batch.digests).await?;
        if let Some((serial, id)) = batch.last {
            store
                .set_sync_value(USAGE_SENT, &format!("{serial}:{id}"))
                .await?;
        }
        done.batches += 1;
        done.records += records;
        done.devices += devices;
        done.backlog = batch.up.backlog;
        if records < BATCH_RECORDS as usize && devices < MAX_SYNC_DEVICES {
            break;
        }
    }
    Ok(done)
}

/// One batch ready to go, with what to remember once the parent took it.
struct Batch {
    up: SyncUp,
    records: usize,
    last: Option<(i64, i64)>,
    digests: Vec<(i64, String)>,
}

/// The usage watermark: the last record the parent acknowledged.
pub async fn usage_sent(service: &Service) -> Result<(i64, i64)> {
    let value = service.store().sync_value(USAGE_SENT).await?;
    Ok(value
        .and_then(|v| {
            let (s, i) = v.split_once(':')?;
            Some((s.parse().ok()?, i.parse().ok()?))
        })
        .unwrap_or((0, 0)))
}

async fn next_batch(service: &Service) -> Result<Batch> {
    let store = service.store();
    let after = usage_sent(service).await?;
    let records = store.usage_for_sync(after, BATCH_RECORDS).await?;
    let last = records.last().map(|r| (r.time_serial, r.id));
    let backlog = store.usage_unsent(last.unwrap_or(after)).await?;
    let (devices, digests) = changed_devices(service).await?;
    let sites = subtree_states(service).await?;
    let codes: Vec<&SiteCode> = sites.iter().map(|s| &s.code).collect();
    let rules = (store.rules().await?)
        .into_iter()
        .filter(|r| codes.contains(&&r.site_code))
        .collect();
    let count = records.len();
    let batch_id = format!(
        "{}:{}.{}:{count}:{}",
        service.site(),
        after.0,
        after.1,
        digests.len()
    );
    Ok(Batch {
        up: SyncUp {
            batch_id,
            sites,
            rules,
            devices,
            usage: by_device(records),
            users: classified_users(service).await?,
            backlog,
        },
        records: count,
        last,
        digests,
    })
}

/// Accounts whose service-account flag an administrator set here (or a child sent up).
async fn classified_users(service: &Service) -> Result<Vec<UserClass>> {
    let users = service.store().users_classified_by_admin().await?;
    Ok(users
        .into_iter()
        .filter_map(|u| {
            (u.service_account_set_by_admin).map(|service_account| UserClass {
                account: u.account,
                service_account,
            })
        })
        .collect())
}

/// This site and its subtree with the status each last reported.
async fn subtree_states(service: &Service) -> Result<Vec<SiteState>> {
    let store = service.store();
    let states = store.site_states().await?;
    let sites = store.sites().await?;
    let below = subtree(service.site(), &sites);
    Ok(states
        .into_iter()
        .filter(|s| below.contains(&s.code))
        .collect())
}

/// Records grouped by device, each group in watermark order.
fn by_device(records: Vec<SyncedRecord>) -> Vec<DeviceUsage> {
    let mut groups: Vec<DeviceUsage> = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    for r in records {
        let i = *index.entry(r.device.id).or_insert_with(|| {
            groups.push(DeviceUsage {
                device: device_ref(&r.device, r.sync_key.as_deref()),
                records: Vec::new(),
            });
            groups.len() - 1
        });
        groups[i].records.push(r.record);
    }
    groups
}

fn device_ref(device: &Device, sync_key: Option<&str>) -> DeviceRef {
    DeviceRef {
        key: device_key(device, sync_key),
        site_code: device.site_code.clone(),
        host_name: device.host_name.clone(),
        machine_id: device.machine_id.clone(),
    }
}

/// Devices whose snapshot may differ from what the parent last acknowledged, at most
/// [`MAX_SYNC_DEVICES`], with their new digests. What is compared is the device's row, its
/// agents' health and its inventory generation, which the database bumps on every write to
/// the device's inventory: a device's inventory is read only when it goes up, not every cycle.
async fn changed_devices(service: &Service) -> Result<(Vec<DeviceSnapshot>, Vec<(i64, String)>)> {
    let store = service.store();
    let sent: HashMap<i64, String> = store.sent_digests().await?.into_iter().collect();
    // Grouped once: looking each device's agents up in the whole list was devices × agents
    // comparisons every cycle.
    let mut agents: HashMap<i64, Vec<tally_core::agents::Agent>> = HashMap::new();
    for a in store.agents().await? {
        agents.entry(a.device_id).or_default().push(a);
    }
    let (mut snapshots, mut digests) = (Vec::new(), Vec::new());
    let mut after = 0;
    loop {
        let page = store.devices_for_sync(after, 1_000).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.device.id;
        for d in page {
            let its_agents = agents.get(&d.device.id).map(Vec::as_slice);
            let its_agents = its_agents.unwrap_or_default();
            let mut snapshot = bare_snapshot(&d.device, d.sync_key.as_deref(), its_agents);
            snapshot.inventory.hash = format!("generation {}", d.inventory_generation);
            let digest = digest_of(&snapshot);
            if sent.get(&d.device.id) == Some(&digest) {
                continue;
            }
            let inventory = store.device_inventory(d.device.id).await?;
            snapshot.inventory.software = inventory.software;
            snapshot.inventory.accounts = inventory.accounts;
            snapshot.inventory.hash = inventory_digest(&snapshot.inventory);
            snapshots.push(snapshot);
            digests.push((d.device.id, digest));
            if snapshots.len() == MAX_SYNC_DEVICES {
                return Ok((snapshots, digests));
            }
        }
    }
    Ok((snapshots, digests))
}

/// A device as the parent gets it (facts, hardware, the health of `agents`, its own), its
/// inventory not read yet.
fn bare_snapshot(
    device: &Device,
    key: Option<&str>,
    agents: &[tally_core::agents::Agent],
) -> DeviceSnapshot {
    let agents = (agents.iter())
        .map(|a| AgentHealth {
            id: qualified_agent_id(&device.site_code, &a.id),
            enrolled_at: a.enrolled_at,
            last_heartbeat: a.last_heartbeat,
            agent_version: a.agent_version.clone(),
            dropped_records: a.dropped_records,
            revoked: a.revoked_at.is_some(),
        })
        .collect();
    DeviceSnapshot {
        device: device_ref(device, key),
        fqdn: device.fqdn.clone(),
        serial: device.serial.clone(),
        last_seen: device.last_seen,
        inventory: Inventory {
            hash: String::new(),
            os: device.os.clone(),
            hardware: Hardware {
                cpu_model: device.cpu_model.clone(),
                sockets: device.sockets,
                cores: device.cores,
                threads: device.threads,
                memory_bytes: device.memory_bytes,
                is_virtual: device.is_virtual,
                serial: device.serial.clone(),
                machine_id: device.machine_id.clone(),
            },
            software: Vec::new(),
            accounts: Vec::new(),
        },
        agents,
    }
}

fn hex_digest(value: &impl Serialize) -> String {
    let json = serde_json::to_vec(value).expect("snapshots serialise");
    hex::encode(Sha256::digest(json))
}

/// The inventory's own hash, so the parent skips storing an unchanged one.
fn inventory_digest(inventory: &Inventory) -> String {
    hex_digest(inventory)
}

/// What decides whether a device goes up again: its bare snapshot with its inventory
/// generation in place of the inventory ([`changed_devices`]), the heartbeat times counting
/// only to the hour, so a live agent's device goes up at most hourly for its health.
fn digest_of(snapshot: &DeviceSnapshot) -> String {
    let hour = |t: Option<DateTime<Utc>>| {
        t.and_then(|t| t.duration_trunc(chrono::Duration::hours(1)).ok())
    };
    let mut coarse = snapshot.clone();
    coarse.last_seen = hour(coarse.last_seen);
    for a in &mut coarse.agents {
        a.last_heartbeat = hour(a.last_heartbeat);
    }
    hex_digest(&coarse)
}

/// Posts one batch, gzip-compressed, as this site.
async fn send(http: &reqwest::Client, creds: &Credentials, up: &SyncUp) -> Result<SyncDown> {
    let json = serde_json::to_vec(up).expect("batches serialise");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&json).map_err(|e| failed("compressing", e))?;
    let body = gz.finish().map_err(|e| failed("compressing", e))?;
    let url = format!(
        "{}/api/v1/site-sync",
        creds.parent_url.trim_end_matches('/')
    );
    let resp = http
        .post(&url)
        .bearer_auth(format!("{}.{}", creds.site_code, creds.credential))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .map_err(|e| failed(&format!("{url} cannot be reached"), e))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(ServiceError::Internal(format!(
            "the parent answered {status}: {text}"
        )));
    }
    resp.json()
        .await
        .map_err(|e| failed("the parent's answer", e))
}

/// Takes the parent's ancestry and its rules: sites first (rules hang on them), then the
/// copied rules of every ancestor made exactly what the parent sent.
async fn apply_down(service: &Service, parent: &SiteCode, down: &SyncDown) -> Result<()> {
    let store = service.store();
    let mut line: Vec<SiteState> = (down.ancestors.iter().rev())
        .map(|s| SiteState {
            code: s.code.clone(),
            name: s.name.clone(),
            parent: s.parent.clone(),
            last_sync_at: None,
            caught_up_at: None,
            backlog: 0,
        })
        .collect();
    if let Some(mut me) = store
        .site_states()
        .await?
        .into_iter()
        .find(|s| s.code == *service.site())
    {
        me.parent = Some(parent.clone());
        line.push(me);
    }
    store.receive_sites(&line).await?;
    let owners: Vec<SiteCode> = down.ancestors.iter().map(|s| s.code.clone()).collect();
    let changed = (store.replace_copied_rules(&owners, &down.rules, Utc::now())).await?;
    if changed > 0 {
        tracing::info!(changed, "rules from parent sites updated");
    }
    Ok(())
}

/// The newest serial a parent has acknowledged, for ageing: raw records above it have not
/// gone up yet and must stay. `None` when this site has no parent.
pub async fn ageing_limit(service: &Service) -> Result<Option<i64>> {
    if !has_parent(service).await? {
        return Ok(None);
    }
    // Records of the last serial may be only partly sent.
    Ok(Some(usage_sent(service).await?.0 - 1))
}

/// Usage records the parent has not yet acknowledged (a count over the records after the
/// watermark only); 0 when this site has no parent.
pub async fn backlog(service: &Service) -> Result<i64> {
    if !has_parent(service).await? {
        return Ok(0);
    }
    let after = usage_sent(service).await?;
    Ok(service.store().usage_unsent(after).await?)
}

async fn has_parent(service: &Service) -> Result<bool> {
    let site = service.store().site(service.site()).await?;
    Ok(site.and_then(|s| s.parent).is_some())
}

/// Starts the sync loop for `service` when it has a parent: joins first if it must.
pub async fn start(service: &Arc<Service>, link: ParentLink) -> Result<()> {
    let creds = credentials(service, &link).await?;
    tokio::spawn(run(Arc::downgrade(service), link, creds));
    Ok(())
}

#[cfg(test)]
mod tests {
    use tally_core::wire::v1::{Hardware, InstalledSoftware, Inventory};
    use tally_store::prelude::*;

    use super::*;

    fn inventory(hash: &str, package: &str) -> Inventory {
        Inventory {
            hash: hash.into(),
            os: Some("Debian 12".into()),
            hardware: Hardware::default(),
            software: vec![InstalledSoftware {
                name: package.into(),
                version: "1.0".into(),
                publisher: "Debian".into(),
                executables: Vec::new(),
            }],
            accounts: Vec::new(),
        }
    }

    /// A device goes up with its inventory, not again while nothing changes (its inventory is
    /// then not read), and again with the new inventory once that is written.
    #[tokio::test]
    async fn a_device_goes_up_again_only_when_its_row_or_inventory_changes() {
        let now = Utc::now();
        let (_dir, store, id) = crate::test_store::with_a_device(now).await;
        let site = SiteCode::parse("S01").unwrap();
        store
            .put_inventory(id, &inventory("h1", "vim"), now)
            .await
            .unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        let service = Service::new(store.clone(), site);

        let names = |snapshots: &[DeviceSnapshot]| -> Vec<String> {
            (snapshots.iter())
                .flat_map(|s| s.inventory.software.iter().map(|p| p.name.clone()))
                .collect()
        };
        let (snapshots, digests) = changed_devices(&service).await.unwrap();
        assert_eq!(names(&snapshots), ["vim"]);
        store.set_sent_digests(&digests).await.unwrap();
        let (snapshots, _) = changed_devices(&service).await.unwrap();
        assert!(snapshots.is_empty(), "nothing changed");

        store
            .put_inventory(id, &inventory("h2", "emacs"), now)
            .await
            .unwrap();
        let (snapshots, digests) = changed_devices(&service).await.unwrap();
        assert_eq!(names(&snapshots), ["emacs"]);
        store.set_sent_digests(&digests).await.unwrap();
        assert!(changed_devices(&service).await.unwrap().0.is_empty());
    }
}
