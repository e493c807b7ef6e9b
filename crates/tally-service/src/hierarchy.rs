//! The parent's side of the site hierarchy: inviting a child, its one join, authenticating its
//! syncs, storing what it sends (its subtree's sites, its rules, devices, usage) and answering
//! with the rules that reach down to it; and the tree as `tally sites` shows it.

use std::io::Read;

use chrono::{DateTime, Duration, Utc};
use tally_api::{InviteSite, SiteInvited, SiteRow};
use tally_core::hierarchy::{
    ancestors, may_claim, subtree, JoinRequest, Joined, SiteLink, SiteState, SyncDown, SyncUp,
    MAX_SYNC_BYTES,
};
use tally_core::limits::{check_name, MAX_NAME};
use tally_core::{MeteringRule, Site, SiteCode};
use tally_store::ReceivedDevice;

use crate::audit::entry;
use crate::operators::new_token;
use crate::web_sessions::secret_hash;
use crate::{Result, Service, ServiceError};

/// How long a join secret stays valid unless the invitation says otherwise.
pub const INVITE_HOURS: u32 = 72;
const MAX_INVITE_HOURS: u32 = 720;

/// Invites child site `req.code`, as `actor`: the one-time join secret, shown once.
pub async fn invite(service: &Service, actor: &str, req: &InviteSite) -> Result<SiteInvited> {
    check_name("name", &req.name, MAX_NAME)?;
    let hours = req.expires_hours.unwrap_or(INVITE_HOURS);
    if !(1..=MAX_INVITE_HOURS).contains(&hours) {
        return Err(ServiceError::Invalid(format!(
            "expires_hours: 1 to {MAX_INVITE_HOURS}"
        )));
    }
    let sites = service.store().sites().await?;
    let below = subtree(service.site(), &sites);
    let taken = sites.iter().any(|s| s.code == req.code) && !below.contains(&req.code);
    if req.code == *service.site() || taken {
        return Err(ServiceError::Conflict(format!(
            "site {} is this site, or a site outside this one's subtree; invite a code not in use",
            req.code
        )));
    }
    let now = Utc::now();
    let link = SiteLink {
        code: req.code.clone(),
        name: req.name.trim().to_string(),
        created_at: now,
        expires_at: now + Duration::hours(i64::from(hours)),
        joined_at: None,
        revoked_at: None,
    };
    let (secret, hash) = new_token();
    let audit = |l: &SiteLink| entry(actor, "site.invite", format!("site:{}", l.code), &l.name);
    if !(service.store())
        .invite_site(&link, &hash, Some(&audit))
        .await?
    {
        return Err(ServiceError::Conflict(format!(
            "site {} has joined already; revoke it first (tally sites revoke {})",
            req.code, req.code
        )));
    }
    Ok(SiteInvited {
        secret,
        ..SiteInvited::from(&link)
    })
}

/// Spends a join secret; `None` when it is not a live invitation of that code.
pub async fn join(service: &Service, req: &JoinRequest) -> Result<Option<Joined>> {
    let (credential, hash) = new_token();
    let store = service.store();
    let joined = store
        .join_site(
            &req.site_code,
            &secret_hash(&req.secret),
            &hash,
            service.site(),
            Utc::now(),
        )
        .await?;
    Ok(joined.map(|link| {
        tracing::info!(site = %link.code, "child site joined");
        Joined {
            site_code: link.code,
            parent: service.site().clone(),
            credential,
        }
    }))
}

/// The live link of child `code` whose credential is `credential`.
pub async fn authenticate(
    service: &Service,
    code: &SiteCode,
    credential: &str,
) -> Result<Option<SiteLink>> {
    Ok(service
        .store()
        .site_link_by_credential(code, &secret_hash(credential))
        .await?)
}

/// Revokes child `code`'s link, as `actor`: its syncs are refused from now on.
pub async fn revoke(service: &Service, actor: &str, code: &SiteCode) -> Result<()> {
    let audit = entry(actor, "site.revoke", format!("site:{code}"), ());
    let done = (service.store())
        .revoke_site_link(code, Utc::now(), Some(&audit))
        .await?;
    if !done {
        return Err(ServiceError::NotFound(format!(
            "no live link of site {code}; see tally sites"
        )));
    }
    Ok(())
}

/// Reads a gzip-compressed JSON body, refusing more than [`MAX_SYNC_BYTES`] once inflated.
pub fn inflate<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_SYNC_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| ServiceError::Invalid(format!("the body is not gzip: {e}")))?;
    if text.len() as u64 > MAX_SYNC_BYTES {
        return Err(ServiceError::Invalid(format!(
            "the body inflates beyond {MAX_SYNC_BYTES} bytes; send smaller batches"
        )));
    }
    serde_json::from_slice(&text).map_err(|e| ServiceError::Invalid(format!("the batch: {e}")))
}

/// Stores child `child`'s batch and answers with what reaches down to it.
pub async fn receive(service: &Service, child: &SiteCode, up: SyncUp) -> Result<SyncDown> {
    let now = Utc::now();
    up.validate(now)?;
    let store = service.store();
    let known = store.sites().await?;
    let claimed = claimed_sites(service, child, &up.sites, &known)?;
    let codes: Vec<SiteCode> = claimed.iter().map(|s| s.code.clone()).collect();
    let foreign = |site: &SiteCode| -> Result<()> {
        if codes.contains(site) {
            return Ok(());
        }
        Err(ServiceError::Invalid(format!(
            "site {child} sent data of site {site}, which is not in its subtree"
        )))
    };
    for r in &up.rules {
        foreign(&r.site_code)?;
    }
    store.receive_sites(&claimed).await?;
    store.replace_copied_rules(&codes, &up.rules, now).await?;
    for d in &up.devices {
        foreign(&d.device.site_code)?;
        let received = ReceivedDevice {
            device: &d.device,
            fqdn: d.fqdn.as_deref(),
            serial: d.serial.as_deref(),
            os: d.inventory.os.as_deref(),
            last_seen: d.last_seen,
        };
        let id = store.receive_device(&received, now).await?;
        // Names arrive as the child stored them (pseudonymised there, if it does); times are
        // the child's sighting, so a later sync of an older snapshot moves nothing.
        let seen = d.last_seen.unwrap_or(now);
        store.put_inventory(id, &d.inventory, seen).await?;
        store.receive_agents(id, &d.agents).await?;
    }
    let mut stored = 0;
    for u in &up.usage {
        foreign(&u.device.site_code)?;
        let received = ReceivedDevice {
            device: &u.device,
            fqdn: None,
            serial: None,
            os: None,
            last_seen: None,
        };
        let id = store.receive_device(&received, now).await?;
        let batch = content_id(child, &u.records);
        stored += service
            .store_usage(id, &batch, &u.records, now)
            .await?
            .stored;
    }
    // After the usage, which creates the accounts the parent did not know yet.
    store.receive_user_classes(child, &up.users).await?;
    store.record_sync(child, now, up.backlog).await?;
    down(service, child, stored).await
}

/// The idempotency key of one device's records in a batch: the records themselves (their
/// natural keys), so the same records sent again are a replay and different ones never are.
fn content_id(child: &SiteCode, records: &[tally_core::wire::v1::UsageRecordV1]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for r in records {
        hash.update(r.meter_data_id.as_bytes());
        hash.update([0]);
        hash.update(r.end_time.to_rfc3339().as_bytes());
        hash.update([0]);
    }
    format!("site:{child}:{}", hex::encode(hash.finalize()))
}

/// The sites a child's batch describes, checked: each is new here or already in the child's
/// subtree, the child hangs under this site, every other site under one of the batch's.
fn claimed_sites(
    service: &Service,
    child: &SiteCode,
    sent: &[SiteState],
    known: &[Site],
) -> Result<Vec<SiteState>> {
    let mut claimed = Vec::with_capacity(sent.len() + 1);
    for s in sent {
        if !may_claim(child, &s.code, known) || s.code == *service.site() {
            return Err(ServiceError::Invalid(format!(
                "site {child} cannot speak for site {}",
                s.code
            )));
        }
        let mut s = s.clone();
        if s.code == *child {
            s.parent = Some(service.site().clone());
        } else if !s
            .parent
            .as_ref()
            .is_some_and(|p| sent.iter().any(|o| &o.code == p))
        {
            return Err(ServiceError::Invalid(format!(
                "site {} is sent without its parent",
                s.code
            )));
        }
        claimed.push(s);
    }
    if !claimed.iter().any(|s| s.code == *child) {
        return Err(ServiceError::Invalid(format!(
            "the batch must describe site {child} itself"
        )));
    }
    Ok(claimed)
}

/// What reaches down to `child`: this site's ancestry and every rule of this site or above
/// marked "apply to child sites" (disabled ones too, so disabling travels).
async fn down(service: &Service, child: &SiteCode, stored: u64) -> Result<SyncDown> {
    let store = service.store();
    let sites = store.sites().await?;
    let mut line = vec![sites
        .iter()
        .find(|s| s.code == *service.site())
        .cloned()
        .ok_or_else(|| ServiceError::Internal("this site is not registered".into()))?];
    line.extend(ancestors(service.site(), &sites));
    let owners: Vec<&SiteCode> = line.iter().map(|s| &s.code).collect();
    let rules: Vec<MeteringRule> = (store.rules().await?)
        .into_iter()
        .filter(|r| r.spec.apply_to_child_sites && owners.contains(&&r.site_code))
        .collect();
    tracing::debug!(site = %child, rules = rules.len(), stored, "child site synced");
    Ok(SyncDown {
        ancestors: line,
        rules,
        stored,
    })
}

/// This site and everything below it, depth first, with each site's sync status and counts.
pub async fn tree(service: &Service, now: DateTime<Utc>) -> Result<Vec<SiteRow>> {
    let store = service.store();
    let states = store.site_states().await?;
    let links = store.site_links().await?;
    let counts = store.site_counts().await?;
    let mut rows = Vec::new();
    let mut stack = vec![(service.site().clone(), 0u32)];
    while let Some((code, depth)) = stack.pop() {
        if rows.iter().any(|r: &SiteRow| r.code == code) {
            continue;
        }
        let Some(s) = states.iter().find(|s| s.code == code) else {
            continue;
        };
        let link = links.iter().find(|l| l.code == code);
        let (devices, records) = (counts.iter())
            .find(|c| c.0 == code)
            .map_or((0, 0), |c| (c.1, c.2));
        rows.push(SiteRow {
            code: code.clone(),
            name: s.name.clone(),
            parent: s.parent.clone(),
            depth,
            link: link_state(depth, link),
            last_sync_at: s.last_sync_at,
            lag_secs: s.caught_up_at.map(|t| (now - t).num_seconds().max(0)),
            backlog: s.backlog,
            devices,
            records,
        });
        let mut children: Vec<&SiteState> = (states.iter())
            .filter(|c| c.parent.as_ref() == Some(&code))
            .collect();
        children.sort_by(|a, b| b.code.cmp(&a.code));
        stack.extend(children.into_iter().map(|c| (c.code.clone(), depth + 1)));
    }
    // Invited children that have not joined yet have no site row: list them too.
    let pending: Vec<&SiteLink> = (links.iter())
        .filter(|l| !rows.iter().any(|r| r.code == l.code))
        .collect();
    for l in pending {
        rows.push(SiteRow {
            code: l.code.clone(),
            name: l.name.clone(),
            parent: Some(service.site().clone()),
            depth: 1,
            link: link_state(1, Some(l)),
            last_sync_at: None,
            lag_secs: None,
            backlog: 0,
            devices: 0,
            records: 0,
        });
    }
    Ok(rows)
}

fn link_state(depth: u32, link: Option<&SiteLink>) -> String {
    match (depth, link) {
        (0, _) => "this site",
        (_, Some(l)) if l.revoked_at.is_some() => "revoked",
        (_, Some(l)) if l.joined_at.is_some() => "joined",
        (_, Some(_)) => "invited",
        _ => "below",
    }
    .into()
}
