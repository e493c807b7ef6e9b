//! `seed_agents`, the bulk enrolment `tally bench fleet` seeds a large site with: each agent
//! gets its own device and signs in with its secret's hash, across the insert chunks; host
//! names that would pair devices with the wrong agents store nothing. On both backends.

mod common;

use chrono::{TimeZone, Utc};
use tally_core::{Site, SiteCode};
use tally_store::prelude::*;
use tally_store::NewAgent;

on_both_backends!(
    seeded_agents_each_get_a_device_and_sign_in,
    seeding_with_a_repeated_host_name_stores_nothing
);

fn agent(n: usize) -> NewAgent {
    NewAgent {
        agent_id: format!("seed-{n}"),
        secret_hash: format!("hash-{n}"),
        host_name: format!("seed-host-{n}"),
        fqdn: None,
        os: Some("Linux".into()),
        serial: None,
        machine_id: None,
    }
}

async fn site(store: &dyn Store) -> SiteCode {
    let code = SiteCode::parse("S01").unwrap();
    store
        .put_site(&Site::central(code.clone(), "Main"))
        .await
        .unwrap();
    code
}

async fn seeded_agents_each_get_a_device_and_sign_in(store: &dyn Store) {
    let code = site(store).await;
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    // More than one insert chunk (1,000 rows), so the pairing holds across chunks.
    let agents: Vec<NewAgent> = (0..2_500).map(agent).collect();
    store.seed_agents(&code, &agents, at).await.unwrap();
    let stored = store.agents().await.unwrap();
    assert_eq!(stored.len(), 2_500);
    let devices: std::collections::HashSet<i64> = stored.iter().map(|a| a.device_id).collect();
    assert_eq!(devices.len(), 2_500, "one device per agent");
    for n in [0, 999, 1_000, 2_499] {
        let (found, hash) = store.agent(&format!("seed-{n}")).await.unwrap().unwrap();
        assert_eq!(hash, format!("hash-{n}"));
        let device = store.device(found.device_id).await.unwrap().unwrap();
        assert_eq!(device.host_name, format!("seed-host-{n}"));
        assert_eq!(device.site_code, code);
    }
}

async fn seeding_with_a_repeated_host_name_stores_nothing(store: &dyn Store) {
    let code = site(store).await;
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let mut agents: Vec<NewAgent> = (0..1_500).map(agent).collect();
    agents[1_200].host_name = agents[1_100].host_name.clone();
    assert!(store.seed_agents(&code, &agents, at).await.is_err());
    assert!(store.agents().await.unwrap().is_empty());
}
