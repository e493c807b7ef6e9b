//! The storage suite: every test runs on SQLite and on PostgreSQL through the `Store` trait.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use tally_core::device::NewDevice;
use tally_core::file::ANY_LANGUAGE;
use tally_core::rules::RuleSpec;
use tally_core::{AuditEntry, FileInfo, MeteringRule, Role, RuleOrigin, Site, SiteCode};
use tally_store::prelude::*;
use tally_store::{NewAgent, NewEnrollmentToken, NewUsageRecord, Page, UsageQuery};

on_both_backends!(
    sites_round_trip_with_parent,
    devices_are_created_paged_and_touched,
    users_and_files_are_upserted_once,
    rules_are_created_edited_and_deleted,
    the_same_usage_record_twice_leaves_one_row,
    usage_times_and_offsets_round_trip_exactly,
    a_batch_with_a_bad_record_stores_nothing,
    usage_queries_filter_and_page,
    operator_tokens_and_audit_log,
    schema_version_is_current,
    enrollment_takes_one_use_of_a_live_token,
    a_replayed_batch_is_acknowledged_as_first_stored,
    a_group_of_uploads_commits_together_each_once,
    agents_are_revoked_and_report_heartbeats_and_drops,
    inventory_replaces_the_previous_one_unless_unchanged,
    summaries_tasks_and_ageing,
    report_queries_sum_per_month_user_and_device,
    a_task_run_and_a_settings_change_keep_each_others_columns,
    an_import_loads_everything_or_nothing,
    an_export_loads_into_another_database_and_exports_the_same,
    run_sessions_grow_and_leave_imported_ones_alone,
    org_rules_and_placement_by_hand,
    installations_and_statuses_keep_their_history,
    a_task_runs_once_at_a_time,
);

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 31, h, m, 0).unwrap()
}

fn code(s: &str) -> SiteCode {
    SiteCode::parse(s).unwrap()
}

fn file(name: &str, version: &str) -> FileInfo {
    FileInfo {
        file_name: name.into(),
        original_file_name: name.into(),
        version: version.into(),
        product_name: "Product".into(),
        publisher: "Publisher".into(),
        language: ANY_LANGUAGE,
    }
}

/// A site, a device, a user and a file to hang usage records on.
async fn fixture(store: &dyn Store) -> (i64, i64, i64) {
    store
        .put_site(&Site::central(code("S01"), "Main"))
        .await
        .unwrap();
    let device = store
        .create_device(&NewDevice::named(&code("S01"), "pc1"), at(8, 0))
        .await
        .unwrap();
    let user = store
        .upsert_user("alice", Some("Alice Liddell"))
        .await
        .unwrap();
    let file = store.upsert_file(&file("code", "1.2")).await.unwrap();
    (device.id, user, file)
}

fn record(
    device: i64,
    user: i64,
    file: i64,
    id: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> NewUsageRecord {
    NewUsageRecord {
        meter_data_id: id.into(),
        device_id: device,
        file_id: file,
        user_id: user,
        start_time: start,
        start_time_offset: 60,
        end_time: end,
        end_time_offset: 120,
        started: true,
        still_running: true,
        start_not_captured: false,
        end_not_captured: false,
        in_ts_session: false,
    }
}

/// An enabled manual rule of site S01 for the file `file_name`, created at 08:00.
async fn manual_rule(store: &dyn Store, name: &str, file_name: &str) -> MeteringRule {
    let spec = RuleSpec {
        file_name: file_name.into(),
        ..RuleSpec::named(name)
    };
    store
        .create_rule(&code("S01"), RuleOrigin::Manual, &spec, at(8, 0), None)
        .await
        .unwrap()
}

async fn sites_round_trip_with_parent(store: &dyn Store) {
    let central = Site {
        code: code("CEN"),
        name: "Central".into(),
        alias: Some("Production".into()),
        parent: None,
    };
    let child = Site::below(code("s01"), "Branch", code("CEN"));
    store.put_site(&central).await.unwrap();
    store.put_site(&child).await.unwrap();
    assert_eq!(store.site(&code("S01")).await.unwrap(), Some(child.clone()));
    assert_eq!(store.sites().await.unwrap(), vec![central.clone(), child]);
    // Re-putting updates in place.
    let renamed = Site {
        name: "Centre".into(),
        ..central
    };
    store.put_site(&renamed).await.unwrap();
    assert_eq!(
        store.site(&code("CEN")).await.unwrap().unwrap().name,
        "Centre"
    );
    assert_eq!(store.sites().await.unwrap().len(), 2);
}

async fn devices_are_created_paged_and_touched(store: &dyn Store) {
    fixture(store).await;
    for i in 2..=5 {
        let new = NewDevice {
            fqdn: Some(format!("pc{i}.example.org")),
            os: Some("Debian 12".into()),
            ..NewDevice::named(&code("S01"), format!("pc{i}"))
        };
        store.create_device(&new, at(9, 0)).await.unwrap();
    }
    let first = store.devices(Page { after: 0, limit: 3 }).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|d| d.host_name.as_str())
            .collect::<Vec<_>>(),
        ["pc1", "pc2", "pc3"]
    );
    let rest = store
        .devices(Page {
            after: first[2].id,
            limit: 3,
        })
        .await
        .unwrap();
    assert_eq!(
        rest.iter()
            .map(|d| d.host_name.as_str())
            .collect::<Vec<_>>(),
        ["pc4", "pc5"]
    );
    assert_eq!(rest[0].fqdn.as_deref(), Some("pc4.example.org"));
    assert_eq!(rest[0].status, tally_core::DeviceStatus::Active);
    store.touch_device(rest[0].id, at(10, 30)).await.unwrap();
    assert_eq!(
        store.device(rest[0].id).await.unwrap().unwrap().last_seen,
        Some(at(10, 30))
    );
    assert_eq!(store.device(9999).await.unwrap(), None);
}

async fn users_and_files_are_upserted_once(store: &dyn Store) {
    let a = store.upsert_user("alice", None).await.unwrap();
    let b = store.upsert_user("alice", Some("Alice")).await.unwrap();
    let c = store.upsert_user("bob", None).await.unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let users = store.users(Page::default()).await.unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(
        users[0].full_name.as_deref(),
        Some("Alice"),
        "a later full name fills in"
    );
    assert!(!users[0].service_account);
    // Only the accounts an administrator classified, until the choice is cleared again.
    assert!(store.users_classified_by_admin().await.unwrap().is_empty());
    let set = store.set_service_account("bob", Some(true), None);
    assert!(set.await.unwrap().is_some());
    let classified = store.users_classified_by_admin().await.unwrap();
    let got: Vec<_> = (classified.iter())
        .map(|u| (u.account.as_str(), u.service_account_set_by_admin))
        .collect();
    assert_eq!(got, [("bob", Some(true))]);
    store.set_service_account("bob", None, None).await.unwrap();
    assert!(store.users_classified_by_admin().await.unwrap().is_empty());
    // A child's classifications: what it stops sending was reset there; an administrator's
    // here stays.
    let child = tally_core::SiteCode::parse("P01").unwrap();
    let class = |account: &str| tally_core::hierarchy::UserClass {
        account: account.into(),
        service_account: true,
    };
    let sent = [class("alice"), class("bob")];
    assert_eq!(store.receive_user_classes(&child, &sent).await.unwrap(), 0);
    assert_eq!(store.users_classified_by_admin().await.unwrap().len(), 2);
    let generations = store.generations().await.unwrap();
    store.receive_user_classes(&child, &sent).await.unwrap();
    assert_eq!(
        store.generations().await.unwrap(),
        generations,
        "the same classes again change nothing a position reads"
    );
    store
        .set_service_account("bob", Some(false), None)
        .await
        .unwrap();
    assert_eq!(store.receive_user_classes(&child, &[]).await.unwrap(), 1);
    let classified = store.users_classified_by_admin().await.unwrap();
    let got: Vec<_> = (classified.iter())
        .map(|u| (u.account.as_str(), u.service_account_set_by_admin))
        .collect();
    assert_eq!(got, [("bob", Some(false))], "alice is automatic again");
    store.set_service_account("bob", None, None).await.unwrap();

    let f1 = store.upsert_file(&file("code", "1.0")).await.unwrap();
    let f2 = store.upsert_file(&file("code", "1.0")).await.unwrap();
    let f3 = store.upsert_file(&file("code", "1.1")).await.unwrap();
    assert_eq!(f1, f2);
    assert_ne!(f1, f3, "each version is its own file");
    let files = store.files(Page::default()).await.unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[1].info, file("code", "1.1"));
}

async fn rules_are_created_edited_and_deleted(store: &dyn Store) {
    fixture(store).await;
    let spec = RuleSpec {
        name: "Editor".into(),
        file_name: "code".into(),
        original_file_name: String::new(),
        file_version: "1.*".into(),
        language: ANY_LANGUAGE,
        product_name: "Visual Studio Code".into(),
        comment: String::new(),
        apply_to_child_sites: true,
        enabled: true,
    };
    let rule = store
        .create_rule(&code("S01"), RuleOrigin::Manual, &spec, at(9, 0), None)
        .await
        .unwrap();
    assert_eq!(rule.spec, spec);
    assert_eq!(rule.origin, RuleOrigin::Manual);
    let edited = RuleSpec {
        enabled: false,
        file_version: "2.*".into(),
        ..spec
    };
    let updated = store
        .update_rule(rule.id, &edited, at(9, 5), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.spec, edited);
    assert_eq!(updated.updated_at, at(9, 5));
    assert_eq!(store.rule(rule.id).await.unwrap(), Some(updated));
    assert_eq!(
        store
            .update_rule(9999, &edited, at(9, 6), None)
            .await
            .unwrap(),
        None
    );
    assert!(store.delete_rule(rule.id, None).await.unwrap());
    assert!(!store.delete_rule(rule.id, None).await.unwrap());
    assert!(store.rules().await.unwrap().is_empty());
}

async fn the_same_usage_record_twice_leaves_one_row(store: &dyn Store) {
    let (d, u, f) = fixture(store).await;
    let r = record(d, u, f, "m1", at(9, 0), at(9, 15));
    let first = store.insert_usage(std::slice::from_ref(&r)).await.unwrap();
    assert_eq!((first.stored, first.duplicates), (1, 0));
    let again = store.insert_usage(&[r.clone(), r.clone()]).await.unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 2));
    assert!(again.time_serial > first.time_serial);
    // The next cycle of the same instance is a new record.
    let next = NewUsageRecord {
        started: false,
        ..record(d, u, f, "m1", at(9, 15), at(9, 30))
    };
    assert_eq!(store.insert_usage(&[next]).await.unwrap().stored, 1);
    let rows = store.usage_records(&UsageQuery::default()).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].time_serial, first.time_serial,
        "a retry does not restamp the row"
    );
}

async fn usage_times_and_offsets_round_trip_exactly(store: &dyn Store) {
    let (d, u, f) = fixture(store).await;
    let start = Utc.timestamp_micros(1_774_950_000_123_456).unwrap();
    let mut r = record(
        d,
        u,
        f,
        "m-precise",
        start,
        start + chrono::Duration::microseconds(900_000_001),
    );
    r.start_time_offset = -300;
    r.end_time_offset = -240;
    r.still_running = false;
    r.end_not_captured = true;
    r.in_ts_session = true;
    store.insert_usage(std::slice::from_ref(&r)).await.unwrap();
    let got = &store.usage_records(&UsageQuery::default()).await.unwrap()[0];
    assert_eq!(got.start_time, r.start_time);
    assert_eq!(got.end_time, r.end_time);
    assert_eq!((got.start_time_offset, got.end_time_offset), (-300, -240));
    assert!(got.started && !got.still_running && got.end_not_captured && got.in_ts_session);
    assert!(!got.start_not_captured && !got.released);
    assert_eq!((got.device_id, got.user_id, got.file_id), (d, u, f));
}

async fn a_batch_with_a_bad_record_stores_nothing(store: &dyn Store) {
    let (d, u, f) = fixture(store).await;
    let good = record(d, u, f, "ok", at(9, 0), at(9, 15));
    let orphan = record(9999, u, f, "orphan", at(9, 0), at(9, 15));
    assert!(store.insert_usage(&[good.clone(), orphan]).await.is_err());
    assert!(store
        .usage_records(&UsageQuery::default())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.insert_usage(&[good]).await.unwrap().stored, 1);
}

async fn usage_queries_filter_and_page(store: &dyn Store) {
    let (d, u, f) = fixture(store).await;
    let other_file = store.upsert_file(&file("vim", "9.0")).await.unwrap();
    let batch: Vec<_> = (0..25)
        .map(|i| {
            let fid = if i % 5 == 0 { other_file } else { f };
            record(d, u, fid, &format!("m{i}"), at(9, i), at(10, i))
        })
        .collect();
    store.insert_usage(&batch).await.unwrap();
    let vim = UsageQuery {
        file_ids: Some(vec![other_file]),
        ..Default::default()
    };
    assert_eq!(store.usage_records(&vim).await.unwrap().len(), 5);
    let since = UsageQuery {
        since: Some(at(10, 20)),
        ..Default::default()
    };
    assert_eq!(store.usage_records(&since).await.unwrap().len(), 5);
    let by_user = |user_id| UsageQuery {
        user_id: Some(user_id),
        ..Default::default()
    };
    assert_eq!(store.usage_records(&by_user(u)).await.unwrap().len(), 25);
    assert!(store
        .usage_records(&by_user(u + 1))
        .await
        .unwrap()
        .is_empty());
    let none = UsageQuery {
        file_ids: Some(vec![]),
        ..Default::default()
    };
    assert!(store.usage_records(&none).await.unwrap().is_empty());
    let mut seen = Vec::new();
    let mut page = Page {
        after: 0,
        limit: 10,
    };
    loop {
        let q = UsageQuery {
            page,
            ..Default::default()
        };
        let got = store.usage_records(&q).await.unwrap();
        if got.is_empty() {
            break;
        }
        page.after = got.last().unwrap().id;
        seen.extend(got.into_iter().map(|r| r.record.meter_data_id));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25);
}

async fn operator_tokens_and_audit_log(store: &dyn Store) {
    let token = store
        .create_operator_token("ops", Role::Auditor, "hash-1", at(8, 0), None)
        .await
        .unwrap();
    assert_eq!(token.role, Role::Auditor);
    assert_eq!(
        store.operator_token_by_hash("hash-1").await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(store.operator_token_by_hash("nope").await.unwrap(), None);
    assert_eq!(store.operator_tokens().await.unwrap(), vec![token.clone()]);
    let entry = AuditEntry {
        at: at(8, 1),
        actor: "ops".into(),
        action: "rule.create".into(),
        target: "rule:1".into(),
        detail: "{}".into(),
    };
    store.append_audit(&entry).await.unwrap();
    let log = store.audit_log(Page::default()).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].1, entry);
}

async fn schema_version_is_current(store: &dyn Store) {
    let v = store.schema_version().await.unwrap();
    assert_eq!(v.database, v.binary);
    assert!(v.binary >= 2);
}

fn new_agent(id: &str) -> NewAgent {
    NewAgent {
        agent_id: id.into(),
        secret_hash: format!("secret-of-{id}"),
        host_name: format!("host-{id}"),
        fqdn: None,
        os: Some("Linux".into()),
        serial: None,
        machine_id: None,
    }
}

/// Whether the token hashed `hash` enrols the agent `agent` at `when`.
async fn enrolls(store: &dyn Store, hash: &str, agent: &str, when: DateTime<Utc>) -> bool {
    let enrolled = store
        .enroll_agent(hash, &new_agent(agent), when, None)
        .await;
    enrolled.unwrap().is_some()
}

async fn enrollment_takes_one_use_of_a_live_token(store: &dyn Store) {
    fixture(store).await;
    let limited = NewEnrollmentToken {
        site_code: code("S01"),
        name: "two".into(),
        expires_at: Some(at(12, 0)),
        max_uses: Some(2),
    };
    let token = store
        .create_enrollment_token(&limited, "h2", at(8, 0), None)
        .await
        .unwrap();
    assert_eq!((token.uses, token.max_uses), (0, Some(2)));
    let (agent, device) = store
        .enroll_agent("h2", &new_agent("a1"), at(9, 0), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(agent.device_id, device.id);
    assert_eq!(device.site_code, code("S01"));
    assert_eq!(device.host_name, "host-a1");
    assert!(enrolls(store, "h2", "a2", at(9, 1)).await);
    assert!(!enrolls(store, "h2", "a3", at(9, 2)).await, "used up");
    assert!(!enrolls(store, "nope", "a4", at(9, 2)).await);

    let expiring = NewEnrollmentToken {
        max_uses: None,
        name: "exp".into(),
        ..limited
    };
    store
        .create_enrollment_token(&expiring, "hx", at(8, 0), None)
        .await
        .unwrap();
    assert!(!enrolls(store, "hx", "a5", at(12, 0)).await, "expired");
    let open = NewEnrollmentToken {
        expires_at: None,
        name: "open".into(),
        ..expiring
    };
    let t = store
        .create_enrollment_token(&open, "ho", at(8, 0), None)
        .await
        .unwrap();
    assert!(store
        .revoke_enrollment_token(t.id, at(9, 0), None)
        .await
        .unwrap());
    assert!(!enrolls(store, "ho", "a6", at(9, 5)).await, "revoked");
    let tokens = store.enrollment_tokens().await.unwrap();
    assert_eq!(tokens.iter().map(|t| t.uses).collect::<Vec<_>>(), [2, 0, 0]);
    assert_eq!(store.agents().await.unwrap().len(), 2);
}

async fn a_replayed_batch_is_acknowledged_as_first_stored(store: &dyn Store) {
    let (d, u, f) = fixture(store).await;
    let rs = vec![
        record(d, u, f, "m1", at(9, 0), at(9, 15)),
        record(d, u, f, "m2", at(9, 0), at(9, 15)),
    ];
    let first = store
        .insert_usage_batch(d, "b1", &rs, at(9, 16))
        .await
        .unwrap();
    assert_eq!(
        (first.stored, first.duplicates, first.replayed),
        (2, 0, false)
    );
    let again = store
        .insert_usage_batch(d, "b1", &rs, at(9, 20))
        .await
        .unwrap();
    assert_eq!(
        (again.stored, again.duplicates, again.replayed),
        (2, 0, true)
    );
    // A new batch re-sending one record stores only the new one.
    let more = vec![rs[0].clone(), record(d, u, f, "m3", at(9, 0), at(9, 15))];
    let third = store
        .insert_usage_batch(d, "b2", &more, at(9, 21))
        .await
        .unwrap();
    assert_eq!((third.stored, third.duplicates), (1, 1));
    assert_eq!(
        store
            .usage_records(&UsageQuery::default())
            .await
            .unwrap()
            .len(),
        3
    );
}

/// Group commit: several uploads in one transaction, under one `TimeSerial`, each answered as
/// if alone — a record another upload of the group brought is a duplicate, and an upload sent
/// twice within the group is stored once and answered as its first receipt.
async fn a_group_of_uploads_commits_together_each_once(store: &dyn Store) {
    let (d, u, f) = fixture(store).await;
    let batch = |id: &str, records: Vec<NewUsageRecord>| tally_store::UsageBatchRows {
        device_id: d,
        batch_id: id.into(),
        records,
        at: at(9, 16),
    };
    let first = vec![
        record(d, u, f, "m1", at(9, 0), at(9, 15)),
        record(d, u, f, "m2", at(9, 0), at(9, 15)),
    ];
    let second = vec![first[1].clone(), record(d, u, f, "m3", at(9, 0), at(9, 15))];
    let outcomes = store
        .insert_usage_batches(&[
            batch("b1", first.clone()),
            batch("b2", second),
            batch("b1", first),
        ])
        .await
        .unwrap();
    let seen: Vec<_> = outcomes
        .iter()
        .map(|o| (o.stored, o.duplicates, o.replayed))
        .collect();
    assert_eq!(seen, [(2, 0, false), (1, 1, false), (2, 0, true)]);
    let stored = store.usage_records(&UsageQuery::default()).await.unwrap();
    assert_eq!(stored.len(), 3);
    let serials: std::collections::BTreeSet<i64> = stored.iter().map(|r| r.time_serial).collect();
    assert_eq!(serials.len(), 1, "one transaction, one serial: {serials:?}");
    assert_eq!(
        store.max_time_serial().await.unwrap(),
        stored[0].time_serial
    );
    // Heartbeats of a group: an unknown agent's is skipped, the others are stored.
    let beat = |id: &str| tally_store::Heartbeat {
        agent_id: id.into(),
        version: "9.9".into(),
        dropped: 1,
        spooled: Some(5),
        at: at(9, 30),
    };
    store
        .agent_heartbeats(&[beat("nobody"), beat("nobody-else")])
        .await
        .unwrap();
}

async fn agents_are_revoked_and_report_heartbeats_and_drops(store: &dyn Store) {
    fixture(store).await;
    let t = NewEnrollmentToken {
        site_code: code("S01"),
        name: "t".into(),
        expires_at: None,
        max_uses: None,
    };
    store
        .create_enrollment_token(&t, "h", at(8, 0), None)
        .await
        .unwrap();
    let (agent, device) = store
        .enroll_agent("h", &new_agent("a1"), at(8, 0), None)
        .await
        .unwrap()
        .unwrap();
    store
        .agent_heartbeat("a1", "0.1.0", 3, at(10, 0))
        .await
        .unwrap();
    store
        .agent_heartbeat("a1", "0.1.1", 2, at(10, 5))
        .await
        .unwrap();
    let (seen, hash) = store.agent("a1").await.unwrap().unwrap();
    assert_eq!(hash, "secret-of-a1");
    assert_eq!(seen.dropped_records, 5);
    assert_eq!(seen.agent_version.as_deref(), Some("0.1.1"));
    assert_eq!(seen.last_heartbeat, Some(at(10, 5)));
    assert_eq!(
        store.device(device.id).await.unwrap().unwrap().last_seen,
        Some(at(10, 5))
    );
    assert!(store
        .revoke_agent(&agent.id, at(11, 0), None)
        .await
        .unwrap());
    assert!(!store
        .revoke_agent(&agent.id, at(11, 1), None)
        .await
        .unwrap());
    assert_eq!(
        store.agent("a1").await.unwrap().unwrap().0.revoked_at,
        Some(at(11, 0))
    );
    assert!(store.agent("zz").await.unwrap().is_none());
}

fn inventory(hash: &str, packages: &[(&str, &[&str])]) -> tally_core::wire::v1::Inventory {
    use tally_core::wire::v1::{Hardware, InstalledSoftware, Inventory};
    Inventory {
        hash: hash.into(),
        os: Some("Debian 12".into()),
        hardware: Hardware {
            cpu_model: Some("Xeon".into()),
            sockets: Some(2),
            cores: Some(16),
            threads: Some(32),
            memory_bytes: Some(1 << 34),
            is_virtual: true,
            serial: None,
            machine_id: None,
        },
        software: packages
            .iter()
            .map(|(name, exes)| InstalledSoftware {
                name: name.to_string(),
                version: "1.0".into(),
                publisher: "Debian".into(),
                executables: exes.iter().map(|e| e.to_string()).collect(),
            })
            .collect(),
        accounts: vec![tally_core::wire::v1::LocalAccount {
            name: "ann".into(),
            uid: 1000,
            full_name: Some("Ann Smith".into()),
            shell: "/bin/bash".into(),
            service_account: false,
            reason: None,
        }],
    }
}

async fn inventory_replaces_the_previous_one_unless_unchanged(store: &dyn Store) {
    let (d1, _, _) = fixture(store).await;
    let new = NewDevice::named(&code("S01"), "pc2");
    let d2 = store.create_device(&new, at(8, 0)).await.unwrap().id;
    assert_eq!(store.inventoried_devices().await.unwrap(), 0);
    // What the up-sync compares: each write to a device's inventory bumps its generation.
    let generation = |id: i64| async move {
        let page = store.devices_for_sync(id - 1, 1).await.unwrap();
        assert_eq!(page[0].device.id, id);
        page[0].inventory_generation
    };
    let before = generation(d1).await;
    let first = inventory("h1", &[("vim", &["vim", "vimdiff"]), ("gimp", &["gimp"])]);
    assert!(store.put_inventory(d1, &first, at(9, 0)).await.unwrap());
    let stored_once = generation(d1).await;
    assert!(stored_once > before);
    assert!(
        !store.put_inventory(d1, &first, at(9, 5)).await.unwrap(),
        "same hash"
    );
    assert_eq!(generation(d1).await, stored_once, "nothing written");
    let other = generation(d2).await;
    assert!(store
        .put_inventory(d2, &inventory("h2", &[("vim", &["vim"])]), at(9, 0))
        .await
        .unwrap());
    assert!(generation(d2).await > other);
    assert_eq!(
        generation(d1).await,
        stored_once,
        "another device's inventory"
    );
    let seen = store.executables_seen().await.unwrap();
    let counts: Vec<_> = seen
        .iter()
        .map(|s| (s.file_name.as_str(), s.devices))
        .collect();
    assert_eq!(counts, [("gimp", 1), ("vim", 2), ("vimdiff", 1)]);
    assert_eq!(store.inventoried_devices().await.unwrap(), 2);
    let device = store.device(d1).await.unwrap().unwrap();
    assert_eq!(
        (device.cores, device.sockets, device.is_virtual),
        (Some(16), Some(2), true)
    );
    assert_eq!(device.last_seen, Some(at(9, 5)));
    assert_eq!(device.memory_bytes, Some(1 << 34));
    let stored = store.device_inventory(d1).await.unwrap();
    let mut expected = first.software.clone();
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(stored.software, expected);
    assert_eq!(stored.accounts, first.accounts);
    // A changed inventory replaces the old one whole.
    assert!(store
        .put_inventory(d1, &inventory("h3", &[("emacs", &["emacs"])]), at(10, 0))
        .await
        .unwrap());
    let names: Vec<_> = store
        .executables_seen()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.file_name)
        .collect();
    assert_eq!(names, ["emacs", "vim"]);
    let replaced = store.device_inventory(d1).await.unwrap();
    assert_eq!(replaced.software.len(), 1);
    assert_eq!(replaced.accounts.len(), 1, "accounts replaced, not added");
    assert!(generation(d1).await > stored_once, "a replaced inventory");
}

async fn summaries_tasks_and_ageing(store: &dyn Store) {
    use tally_core::summary::{FileUsageHour, MonthKey, MonthlyUsage};
    use tally_core::tasks::Task;
    let (d, u, f) = fixture(store).await;
    let rule = manual_rule(store, "Code", "code").await;
    let first = store
        .insert_usage(&[record(d, u, f, "m1", at(9, 50), at(10, 10))])
        .await
        .unwrap();
    let second = store
        .insert_usage(&[record(d, u, f, "m2", at(11, 0), at(11, 5))])
        .await
        .unwrap();
    assert_eq!(store.max_time_serial().await.unwrap(), second.time_serial);
    assert_eq!(
        store.newest_time_serial().await.unwrap(),
        second.time_serial
    );
    assert_eq!(store.usage_pending(first.time_serial).await.unwrap(), 1);
    let newer = store
        .usage_by_serial((first.time_serial, second.time_serial), (0, 0), 10)
        .await
        .unwrap();
    assert_eq!(newer.len(), 1);
    assert_eq!(newer[0].meter_data_id, "m2");
    let overlapping = store.usage_overlapping(at(10, 0), at(11, 0)).await.unwrap();
    assert_eq!(
        overlapping.len(),
        1,
        "m1 overlaps 10:00–11:00, m2 starts at its end"
    );

    let hour = |h: u32, usage_ms: i64| FileUsageHour {
        rule_id: rule.id,
        hour: at(h, 0),
        distinct_users: 1,
        distinct_devices: 1,
        distinct_ts_users: 0,
        usage_ms,
        peak_concurrent_runs: 1,
        peak_concurrent_users: 1,
    };
    let keys = [(rule.id, at(9, 0)), (rule.id, at(10, 0))];
    store
        .replace_file_usage_hours(&keys, &[hour(9, 600_000), hour(10, 600_000)])
        .await
        .unwrap();
    store
        .replace_file_usage_hours(&keys, &[hour(9, 700_000)])
        .await
        .unwrap();
    let rows = store
        .file_usage_hours(Some(rule.id), at(0, 0), at(23, 0))
        .await
        .unwrap();
    assert_eq!(
        rows,
        [hour(9, 700_000)],
        "replaced whole, the vanished key removed"
    );

    let key = MonthKey {
        rule_id: rule.id,
        device_id: d,
        user_id: u,
        month: 202603,
    };
    let usage = MonthlyUsage {
        runs: 1,
        usage_ms: 1000,
        last_used: at(10, 10),
    };
    store
        .add_monthly_usage(&[(key, usage)], (0, 5))
        .await
        .unwrap();
    store
        .add_monthly_usage(&[(key, usage)], (5, 7))
        .await
        .unwrap();
    let stale = store.add_monthly_usage(&[(key, usage)], (5, 9)).await;
    assert!(
        matches!(stale, Err(tally_store::StoreError::Conflict(_))),
        "a stale watermark adds nothing"
    );
    let months = store
        .monthly_usage(None, (202601, 202612), None)
        .await
        .unwrap();
    assert_eq!(months.len(), 1);
    assert_eq!((months[0].1.runs, months[0].1.usage_ms), (2, 2000));
    let tasks = store.tasks().await.unwrap();
    assert_eq!(tasks.len(), Task::ALL.len());
    assert_eq!(tasks[1].watermark, 7);
    let ageing = tasks
        .iter()
        .find(|t| t.name == "delete_aged_usage")
        .unwrap();
    assert_eq!(ageing.age_days, Some(5), "defaults for tasks never stored");

    // Ageing: only records summarised (serial <= watermark) and older than the cutoff go.
    let deleted = store
        .delete_aged_usage(at(12, 0), first.time_serial)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(store.usage_pending(0).await.unwrap(), 1);
    let deleted = store
        .delete_aged_summaries(at(10, 0), 202604)
        .await
        .unwrap();
    assert_eq!(deleted, 2, "the 9:00 hour and March");
}

/// A run that read the task's state before an operator changed its settings records only its
/// outcome, and a settings change only the settings: neither undoes the other.
async fn a_task_run_and_a_settings_change_keep_each_others_columns(store: &dyn Store) {
    use tally_store::TaskPart;
    let task = |tasks: Vec<tally_core::tasks::TaskState>| {
        tasks
            .into_iter()
            .find(|t| t.name == "delete_aged_usage")
            .unwrap()
    };
    let read_by_run = task(store.tasks().await.unwrap());
    let mut settings = read_by_run.clone();
    (settings.every_secs, settings.age_days) = (43_200, Some(30));
    store
        .put_task(&settings, TaskPart::Settings, None)
        .await
        .unwrap();
    let mut outcome = read_by_run;
    (outcome.last_run_at, outcome.last_rows) = (Some(at(9, 0)), Some(12));
    store
        .put_task(&outcome, TaskPart::Outcome, None)
        .await
        .unwrap();
    let stored = task(store.tasks().await.unwrap());
    assert_eq!(
        (stored.every_secs, stored.age_days, stored.last_rows),
        (43_200, Some(30), Some(12))
    );
    assert_eq!(stored.last_run_at, Some(at(9, 0)));
    // And the other way round: settings written from a state read before the run.
    settings.every_secs = 7_200;
    store
        .put_task(&settings, TaskPart::Settings, None)
        .await
        .unwrap();
    let stored = task(store.tasks().await.unwrap());
    assert_eq!((stored.every_secs, stored.last_rows), (7_200, Some(12)));
}

async fn report_queries_sum_per_month_user_and_device(store: &dyn Store) {
    use tally_core::summary::{MonthKey, MonthlyUsage};
    use tally_store::UsageByKind;
    let (d1, u1, _) = fixture(store).await;
    // pc2 reports to a child site: what a parent's `--site` narrows to.
    let child = Site::below(code("P01"), "Branch", code("S01"));
    store.put_site(&child).await.unwrap();
    let new = NewDevice {
        fqdn: Some("pc2.example.org".into()),
        ..NewDevice::named(&code("P01"), "pc2")
    };
    let d2 = store.create_device(&new, at(8, 0)).await.unwrap().id;
    let u2 = store.upsert_user("bob", Some("Bob Jones")).await.unwrap();
    let rule = manual_rule(store, "Vim", "vim").await;
    let row = |device_id, user_id, month, runs, usage_ms, last_used| {
        (
            MonthKey {
                rule_id: rule.id,
                device_id,
                user_id,
                month,
            },
            MonthlyUsage {
                runs,
                usage_ms,
                last_used,
            },
        )
    };
    let rows = [
        row(d1, u1, 202603, 2, 1_000, at(9, 0)),
        row(d2, u1, 202603, 1, 500, at(10, 30)),
        row(d2, u2, 202603, 4, 4_000, at(11, 0)),
        row(
            d1,
            u1,
            202604,
            3,
            3_000,
            at(12, 0) + chrono::Duration::days(1),
        ),
    ];
    store.add_monthly_usage(&rows, (0, 1)).await.unwrap();

    let totals = store.monthly_totals((202603, 202604), None).await.unwrap();
    let got: Vec<_> = totals
        .iter()
        .map(|t| (t.month, t.runs, t.users, t.devices, t.usage_ms))
        .collect();
    assert_eq!(got, [(202603, 7, 2, 2, 5_500), (202604, 3, 1, 1, 3_000)]);
    assert!(store
        .monthly_totals((202605, 202612), None)
        .await
        .unwrap()
        .is_empty());
    // Narrowed to the child site's devices (pc2), and to a site with no usage.
    let p01 = [code("P01")];
    let totals = store.monthly_totals((202603, 202604), Some(&p01));
    let got: Vec<_> = (totals.await.unwrap().iter())
        .map(|t| (t.month, t.runs, t.users, t.devices, t.usage_ms))
        .collect();
    assert_eq!(got, [(202603, 5, 2, 1, 4_500)]);
    let rows = store.monthly_usage(Some(rule.id), (0, 999_912), Some(&p01));
    let devices: Vec<i64> = (rows.await.unwrap().iter())
        .map(|(k, _)| k.device_id)
        .collect();
    assert_eq!(devices, [d2, d2]);
    let by_user = store.monthly_usage_by(UsageByKind::User, rule.id, (0, 999_912), Some(&p01));
    let got: Vec<_> = (by_user.await.unwrap().iter())
        .map(|u| (u.name.clone(), u.runs))
        .collect();
    assert_eq!(got, [("bob".to_string(), 4), ("alice".to_string(), 1)]);
    let x99 = [code("X99")];
    let nowhere = store.monthly_totals((0, 999_912), Some(&x99));
    assert!(nowhere.await.unwrap().is_empty());
    assert!(store
        .monthly_totals((0, 999_912), Some(&[]))
        .await
        .unwrap()
        .is_empty());

    let users = store
        .monthly_usage_by(UsageByKind::User, rule.id, (202603, 202603), None)
        .await
        .unwrap();
    let got: Vec<_> = users
        .iter()
        .map(|u| (u.name.as_str(), u.runs, u.usage_ms, u.others, u.last_used))
        .collect();
    assert_eq!(
        got,
        [
            ("bob", 4, 4_000, 1, at(11, 0)),
            ("alice", 3, 1_500, 2, at(10, 30))
        ],
        "most used first; alice used two devices"
    );
    assert_eq!(users[0].detail.as_deref(), Some("Bob Jones"));
    let devices = store
        .monthly_usage_by(UsageByKind::Device, rule.id, (0, 999_912), None)
        .await
        .unwrap();
    let got: Vec<_> = devices
        .iter()
        .map(|d| (d.id, d.runs, d.usage_ms, d.others, d.last_used))
        .collect();
    assert_eq!(
        got,
        [
            (d2, 5, 4_500, 2, at(11, 0)),
            (d1, 5, 4_000, 1, at(12, 0) + chrono::Duration::days(1))
        ]
    );

    // One device's rows, and one user's, newest month first, each with its names.
    let of = |rows: Vec<(MonthKey, MonthlyUsage, tally_store::MonthNames)>| -> Vec<_> {
        (rows.into_iter())
            .map(|(k, u, n)| (k.month, u.runs, n.rule, n.host_name, n.account))
            .collect()
    };
    let named = |host: &str, account: &str| {
        let name = |s: &str| Some(s.to_string());
        (name("Vim"), name(host), name(account))
    };
    let pc2 = store.monthly_usage_of(tally_store::UsageOf::Device(d2), (0, 999_912));
    let (rule_name, host, alice) = named("pc2", "alice");
    let bob = Some("bob".to_string());
    assert_eq!(
        of(pc2.await.unwrap()),
        [
            (202603, 1, rule_name.clone(), host.clone(), alice),
            (202603, 4, rule_name, host, bob)
        ]
    );
    let alice = store.monthly_usage_of(tally_store::UsageOf::User(u1), (202604, 202604));
    let (rule_name, pc1, account) = named("pc1", "alice");
    assert_eq!(
        of(alice.await.unwrap()),
        [(202604, 3, rule_name, pc1, account)],
        "only the months asked for"
    );

    store
        .put_inventory(
            d1,
            &inventory("h1", &[("vim", &["vim", "vimdiff"])]),
            at(9, 0),
        )
        .await
        .unwrap();
    store
        .put_inventory(d2, &inventory("h2", &[("neovim", &["VIM"])]), at(9, 0))
        .await
        .unwrap();
    let installed = store.installations("Vim").await.unwrap();
    let got: Vec<_> = installed
        .iter()
        .map(|i| (i.host_name.as_str(), i.package.as_str(), i.version.as_str()))
        .collect();
    assert_eq!(got, [("pc1", "vim", "1.0"), ("pc2", "neovim", "1.0")]);
    assert!(store.installations("emacs").await.unwrap().is_empty());
}

fn origin(line: usize) -> tally_core::import::Origin {
    tally_core::import::Origin {
        file: "t".into(),
        line,
    }
}

fn estate_batch() -> tally_core::import::Batch {
    use tally_core::import::*;
    use tally_core::{AssignmentType, DeviceStatus, Metric};
    let node = |name: &str, parent: Option<&str>| OrgNodeRow {
        name: name.into(),
        parent: parent.map(String::from),
    };
    let device = |host: &str, node: &str, status| DeviceRow {
        host_name: host.into(),
        org_node: Some(node.into()),
        status: Some(status),
        sockets: Some(2),
        cores: Some(8),
        pvu_per_core: Some(70),
        os: None,
        serial: None,
        management_type: None,
    };
    let mut b = Batch {
        org_nodes: vec![
            (origin(2), node("Berlin", Some("HQ"))),
            (origin(3), node("HQ", None)),
        ],
        ..Default::default()
    };
    b.devices = vec![
        (origin(2), device("pc1", "Berlin", DeviceStatus::Active)),
        (origin(3), device("pc2", "HQ", DeviceStatus::Retired)),
    ];
    b.users = vec![(
        origin(2),
        UserRow {
            account: "ann".into(),
            full_name: Some("Ann".into()),
            status: None,
            service_account: Some(false),
            org_node: Some("Berlin".into()),
            cannot_change_password: None,
        },
    )];
    b.applications = vec![(
        origin(2),
        ApplicationRow {
            publisher: "Contoso".into(),
            period_days: Some(30),
            software: Some("office*".into()),
            ..ApplicationRow::new("Office", Metric::Installations)
        },
    )];
    b.installations = vec![(
        origin(2),
        InstallationRow {
            host_name: "pc1".into(),
            software: "office-suite".into(),
            version: "16.0".into(),
            publisher: "Contoso".into(),
            installed_on: None,
        },
    )];
    b.sessions = vec![(
        origin(2),
        SessionRow {
            application: "Office".into(),
            host_name: "pc1".into(),
            account: "ann".into(),
            start: at(9, 0),
            end: at(10, 0),
        },
    )];
    b.licenses = vec![(
        origin(2),
        LicenseRow {
            assigned_to: Some("HQ".into()),
            valid_until: Some(chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()),
            unit_cost: Some("99.5".into()),
            currency: Some("EUR".into()),
            order_reference: Some("PO-1".into()),
            ..LicenseRow::new(
                "Office",
                Metric::Installations,
                5,
                AssignmentType::Organization,
            )
        },
    )];
    b
}

async fn an_import_loads_everything_or_nothing(store: &dyn Store) {
    fixture(store).await;
    let batch = estate_batch();
    assert!(tally_core::import::validate(
        &batch,
        &store.import_known().await.unwrap(),
        chrono::Utc::now()
    )
    .is_empty());
    let seen = std::sync::atomic::AtomicU64::new(0);
    let progress = |n: u64| seen.store(n, std::sync::atomic::Ordering::Relaxed);
    let outcome = store
        .import(&batch, &code("S01"), at(12, 0), &progress, None)
        .await
        .unwrap();
    assert_eq!(
        (
            outcome.devices,
            outcome.installations,
            outcome.sessions,
            outcome.licenses
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::Relaxed),
        9,
        "every row counted"
    );

    let nodes = store.org_nodes().await.unwrap();
    let hq = nodes.iter().find(|n| n.name == "HQ").unwrap().id;
    let berlin = nodes.iter().find(|n| n.name == "Berlin").unwrap();
    assert_eq!(berlin.parent, Some(hq));
    let apps = store.applications().await.unwrap();
    assert_eq!(
        apps[0].application.metering_period,
        tally_core::MeteringPeriod::RollingDays { days: 30 }
    );
    assert_eq!(apps[0].recognition[0].software, "office*");
    let licenses = store.licenses().await.unwrap();
    assert_eq!(
        (licenses[0].assigned_to, licenses[0].unit_cost_minor),
        (Some(hq), Some(9950))
    );
    let devices = store.compliance_devices().await.unwrap();
    let pc2 = devices
        .iter()
        .find(|d| d.status.as_str() == "retired")
        .unwrap();
    assert_eq!((pc2.cores, pc2.org_node), (Some(8), Some(hq)));
    let users = store.compliance_users().await.unwrap();
    assert!(users.iter().any(|u| u.org_node == Some(berlin.id)));
    let titles = store.software_titles(at(13, 0)).await.unwrap();
    assert_eq!(
        titles,
        [("office-suite".into(), "Contoso".into(), "16.0".into())]
    );
    let title = (
        titles[0].0.as_str(),
        titles[0].1.as_str(),
        titles[0].2.as_str(),
    );
    let pc1 = devices.iter().find(|d| d.host_name == "pc1").unwrap().id;
    assert_eq!(store.devices_with(title, at(13, 0)).await.unwrap(), [pc1]);
    let sessions = store
        .sessions(apps[0].application.id, (at(0, 0), at(23, 0)))
        .await
        .unwrap();
    assert_eq!((sessions.len(), sessions[0].start_time), (1, at(9, 0)));
    assert!(store
        .sessions(apps[0].application.id, (at(10, 30), at(23, 0)))
        .await
        .unwrap()
        .is_empty());

    // Importing again updates by name and adds the license again; a row the checks would
    // have refused (an unknown computer) rolls the whole import back.
    let mut again = estate_batch();
    again.licenses[0].1.assignment_type = tally_core::AssignmentType::Computer;
    again.licenses[0].1.metric = tally_core::Metric::ProcessorCores;
    again.licenses[0].1.assigned_to = Some("nowhere".into());
    let failed = store
        .import(&again, &code("S01"), at(12, 0), &|_| {}, None)
        .await;
    assert!(
        matches!(failed, Err(tally_store::StoreError::Conflict(_))),
        "{failed:?}"
    );
    assert_eq!(
        store.licenses().await.unwrap().len(),
        1,
        "nothing of the failed import stayed"
    );
    assert_eq!(
        store
            .sessions(apps[0].application.id, (at(0, 0), at(23, 0)))
            .await
            .unwrap()
            .len(),
        1
    );

    let snapshot = tally_store::Snapshot {
        day: at(0, 0).date_naive(),
        application_id: apps[0].application.id,
        required: 1,
        owned: 5,
        covered: 1,
        shortfall: 0,
        surplus: 4,
        status: "over_licensed".into(),
    };
    store
        .put_snapshots(snapshot.day, std::slice::from_ref(&snapshot))
        .await
        .unwrap();
    store
        .put_snapshots(snapshot.day, std::slice::from_ref(&snapshot))
        .await
        .unwrap();
    assert_eq!(
        store.snapshots(None, snapshot.day).await.unwrap(),
        [snapshot]
    );
}

/// Every row of every kind, one row per page so that paging is exercised.
async fn export_everything(
    store: &dyn Store,
) -> Vec<(tally_core::import::Kind, Vec<tally_core::import::AnyRow>)> {
    let mut out = Vec::new();
    for kind in tally_core::import::Kind::ALL {
        let (mut rows, mut after) = (Vec::new(), 0);
        loop {
            let (page, next) = store.export_page(kind, after, 1).await.unwrap();
            assert!(page.len() <= 1 || kind == tally_core::import::Kind::Installations);
            rows.extend(page);
            match next {
                Some(cursor) => after = cursor,
                None => break,
            }
        }
        out.push((kind, rows));
    }
    out
}

async fn an_export_loads_into_another_database_and_exports_the_same(store: &dyn Store) {
    use tally_core::import::{AnyRow, Batch, Kind, Origin};
    fixture(store).await;
    store
        .import(&estate_batch(), &code("S01"), at(12, 0), &|_| {}, None)
        .await
        .unwrap();
    // Custom compare values: a second load replaces the value for the same application and
    // node rather than adding one.
    let seats = |node: Option<&str>, quantity: i64| {
        (
            Origin {
                file: "custom_values.csv".into(),
                line: 2,
            },
            tally_core::import::CustomValueRow {
                application: "Seats".into(),
                org_node: node.map(Into::into),
                quantity,
            },
        )
    };
    let mut custom = Batch::default();
    custom.applications.push((
        Origin {
            file: "applications.csv".into(),
            line: 2,
        },
        tally_core::import::ApplicationRow::new("Seats", tally_core::Metric::CustomCompareValues),
    ));
    custom.custom_values = vec![seats(Some("HQ"), 4), seats(None, 2)];
    store
        .import(&custom, &code("S01"), at(12, 0), &|_| {}, None)
        .await
        .unwrap();
    let again_seats = Batch {
        custom_values: vec![seats(Some("HQ"), 5)],
        ..Default::default()
    };
    assert!(tally_core::import::validate(
        &again_seats,
        &store.import_known().await.unwrap(),
        chrono::Utc::now()
    )
    .is_empty());
    store
        .import(&again_seats, &code("S01"), at(12, 0), &|_| {}, None)
        .await
        .unwrap();
    let mut quantities: Vec<i64> = store
        .custom_values()
        .await
        .unwrap()
        .iter()
        .map(|v| v.2)
        .collect();
    quantities.sort();
    assert_eq!(quantities, [2, 5]);

    let exported = export_everything(store).await;
    let rows = |kind: Kind| exported.iter().find(|(k, _)| *k == kind).unwrap().1.clone();
    assert_eq!(
        rows(Kind::CustomValues),
        [
            AnyRow::CustomValue(seats(None, 2).1),
            AnyRow::CustomValue(seats(Some("HQ"), 5).1)
        ]
    );

    // Names, not ids; defaults made explicit; the price as a decimal with its cents.
    let batch = estate_batch();
    assert!(rows(Kind::OrgNodes).contains(&AnyRow::OrgNode(batch.org_nodes[0].1.clone())));
    let mut pc2 = batch.devices[1].1.clone();
    pc2.status = Some(tally_core::DeviceStatus::Retired);
    assert!(rows(Kind::Devices).contains(&AnyRow::Device(pc2)));
    let mut office = batch.applications[0].1.clone();
    office.total_user_metric = Some(Default::default());
    assert_eq!(rows(Kind::Applications)[0], AnyRow::Application(office));
    assert_eq!(
        rows(Kind::Installations),
        [AnyRow::Installation(batch.installations[0].1.clone())]
    );
    assert_eq!(
        rows(Kind::UsageSessions),
        [AnyRow::Session(batch.sessions[0].1.clone())]
    );
    let mut license = batch.licenses[0].1.clone();
    license.unit_cost = Some("99.50".into());
    assert_eq!(rows(Kind::Licenses), [AnyRow::License(license)]);

    // Loaded into a second database of the same backend, it exports the same rows.
    let mut again = Batch::default();
    for (kind, kind_rows) in &exported {
        for (i, row) in kind_rows.iter().enumerate() {
            let origin = Origin {
                file: kind.name().into(),
                line: i + 2,
            };
            again.push(origin, row.clone());
        }
    }
    let other = common::fresh_like(store).await;
    fixture(other.store()).await;
    assert!(tally_core::import::validate(
        &again,
        &other.store().import_known().await.unwrap(),
        chrono::Utc::now()
    )
    .is_empty());
    other
        .store()
        .import(&again, &code("S01"), at(12, 0), &|_| {}, None)
        .await
        .unwrap();
    assert_eq!(export_everything(other.store()).await, exported);
}

async fn run_sessions_grow_and_leave_imported_ones_alone(store: &dyn Store) {
    use tally_core::sessions::RunSession;
    fixture(store).await;
    store
        .import(&estate_batch(), &code("S01"), at(12, 0), &|_| {}, None)
        .await
        .unwrap();
    let app = store.applications().await.unwrap()[0].application.id;
    let device = store.compliance_devices().await.unwrap()[0].id;
    let user = store.compliance_users().await.unwrap()[0].id;
    let run = |from: DateTime<Utc>, to: DateTime<Utc>| RunSession {
        application_id: app,
        meter_data_id: "m1".into(),
        device_id: device,
        user_id: user,
        start: from,
        end: to,
    };
    assert_eq!(
        store
            .put_run_sessions(&[run(at(13, 0), at(13, 30))])
            .await
            .unwrap(),
        1
    );
    // A later report and a re-read of an earlier one: the session only grows.
    store
        .put_run_sessions(&[run(at(13, 30), at(14, 15))])
        .await
        .unwrap();
    store
        .put_run_sessions(&[run(at(13, 0), at(13, 30))])
        .await
        .unwrap();
    let sessions = store.sessions(app, (at(0, 0), at(23, 0))).await.unwrap();
    let mut spans: Vec<_> = sessions
        .iter()
        .map(|s| (s.start_time, s.end_time))
        .collect();
    spans.sort();
    assert_eq!(
        spans,
        [(at(9, 0), at(10, 0)), (at(13, 0), at(14, 15))],
        "the imported session and the run"
    );
}

async fn org_rules_and_placement_by_hand(store: &dyn Store) {
    use tally_core::org::OrgRule;
    use tally_store::OrgTarget;
    fixture(store).await;
    store
        .import(&estate_batch(), &code("S01"), at(12, 0), &|_| {}, None)
        .await
        .unwrap();
    let berlin = store
        .org_nodes()
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.name == "Berlin")
        .unwrap()
        .id;
    let rule = |host: Option<&str>, account: Option<&str>| OrgRule {
        id: 0,
        org_node: berlin,
        site: Some("S01".into()),
        host_name: host.map(Into::into),
        account: account.map(Into::into),
    };
    let first = store
        .add_org_rule(&rule(Some("pc*"), None), None)
        .await
        .unwrap();
    let second = store
        .add_org_rule(&rule(None, Some("a*")), None)
        .await
        .unwrap();
    assert!(second.id > first.id);
    assert_eq!(
        store.org_rules().await.unwrap(),
        [first.clone(), second.clone()]
    );
    assert!(store.delete_org_rule(first.id, None).await.unwrap());
    assert!(!store.delete_org_rule(first.id, None).await.unwrap());
    assert_eq!(store.org_rules().await.unwrap(), [second]);

    let devices = store.compliance_devices().await.unwrap();
    let pc2 = devices.iter().find(|d| d.host_name == "pc2").unwrap();
    assert_eq!(pc2.site_code.as_str(), "S01");
    assert!(store
        .set_org_node(OrgTarget::Device(pc2.id), Some(berlin), None)
        .await
        .unwrap());
    assert!(store
        .set_org_node(OrgTarget::User(-1), None, None)
        .await
        .is_ok_and(|found| !found));
    let devices = store.compliance_devices().await.unwrap();
    assert_eq!(
        devices.iter().find(|d| d.id == pc2.id).unwrap().org_node,
        Some(berlin)
    );
    let ann = store
        .compliance_users()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.account == "ann")
        .unwrap();
    assert!(store
        .set_org_node(OrgTarget::User(ann.id), None, None)
        .await
        .unwrap());
    let users = store.compliance_users().await.unwrap();
    assert_eq!(
        users.iter().find(|u| u.id == ann.id).unwrap().org_node,
        None
    );
}

/// Compliance on a past day needs what was installed then and the statuses then: inventories
/// mark what they no longer list as removed, and imports keep the status a change replaced.
async fn installations_and_statuses_keep_their_history(store: &dyn Store) {
    use tally_core::import::{AnyRow, Batch, DeviceRow, InstallationRow, Origin, UserRow};
    let (d1, _, _) = fixture(store).await;
    let titles = |on| async move {
        let mut titles = store.software_titles(on).await.unwrap();
        titles.sort_unstable();
        titles.into_iter().map(|t| t.0).collect::<Vec<_>>()
    };
    let with = |name: &'static str, on| async move {
        store
            .devices_with((name, "Debian", "1.0"), on)
            .await
            .unwrap()
    };
    let two = [("vim", &["vim"][..]), ("gimp", &["gimp"][..])];
    store
        .put_inventory(d1, &inventory("h1", &two), at(9, 0))
        .await
        .unwrap();
    let one = [("vim", &["vim"][..])];
    store
        .put_inventory(d1, &inventory("h2", &one), at(10, 0))
        .await
        .unwrap();
    store
        .put_inventory(d1, &inventory("h3", &two), at(11, 0))
        .await
        .unwrap();
    assert!(
        titles(at(8, 59)).await.is_empty(),
        "nothing seen before 9:00"
    );
    assert_eq!(titles(at(9, 30)).await, ["gimp", "vim"]);
    assert_eq!(titles(at(10, 30)).await, ["vim"], "gimp removed at 10:00");
    assert_eq!(with("gimp", at(10, 30)).await, Vec::<i64>::new());
    assert_eq!(
        with("gimp", at(11, 30)).await,
        [d1],
        "installed again at 11:00"
    );
    assert_eq!(
        with("gimp", at(9, 30)).await,
        [d1],
        "the first period is kept"
    );
    assert_eq!(with("vim", at(9, 30)).await, [d1], "vim kept its first day");
    let now = store.device_inventory(d1).await.unwrap();
    assert_eq!(now.software.len(), 2);
    // A device's history holds every period: gimp's first, removed at 10:00, then its second.
    let history = store.software_history(d1).await.unwrap();
    let gimp: Vec<_> = history
        .iter()
        .filter(|p| p.name == "gimp")
        .map(|p| (p.installed_at, p.removed_at))
        .collect();
    assert_eq!(
        gimp,
        [(Some(at(9, 0)), Some(at(10, 0))), (Some(at(11, 0)), None)]
    );
    // A package listed twice (two architectures) is one installation.
    let twice = [("vim", &["vim"][..]), ("vim", &["vim"][..])];
    store
        .put_inventory(d1, &inventory("h4", &twice), at(12, 0))
        .await
        .unwrap();
    assert_eq!(with("vim", at(12, 30)).await, [d1]);
    assert_eq!(titles(at(12, 30)).await, ["vim"]);

    // An imported installation without a date counts on every day; one with a date from then.
    let host = store.device(d1).await.unwrap().unwrap().host_name;
    let mut batch = Batch::default();
    let row = |software: &str, installed_on| InstallationRow {
        host_name: host.as_str().into(),
        software: software.into(),
        version: "1.0".into(),
        publisher: "Debian".into(),
        installed_on,
    };
    let origin = |line| Origin {
        file: "installations.csv".into(),
        line,
    };
    batch.push(origin(2), AnyRow::Installation(row("ed", None)));
    let day = chrono::NaiveDate::from_ymd_opt(2026, 4, 2).unwrap();
    batch.push(origin(3), AnyRow::Installation(row("nano", Some(day))));
    batch.push(
        origin(4),
        AnyRow::Device(DeviceRow {
            host_name: host.clone(),
            status: Some(tally_core::DeviceStatus::Retired),
            ..DeviceRow::default()
        }),
    );
    batch.push(
        origin(5),
        AnyRow::User(UserRow {
            account: "alice".into(),
            status: Some(tally_core::UserStatus::Inactive),
            ..UserRow::default()
        }),
    );
    let nothing = |_| {};
    let april = Utc.with_ymd_and_hms(2026, 4, 5, 12, 0, 0).unwrap();
    store
        .import(&batch, &code("S01"), april, &nothing, None)
        .await
        .unwrap();
    assert_eq!(with("ed", at(0, 0)).await, [d1]);
    assert_eq!(with("nano", at(23, 0)).await, Vec::<i64>::new());
    assert_eq!(with("nano", april).await, [d1]);

    let changes = store.status_changes(at(23, 0)).await.unwrap();
    let mut was: Vec<_> = changes
        .iter()
        .map(|c| (c.subject.as_str(), c.old_status.as_str()))
        .collect();
    was.sort_unstable();
    assert_eq!(was, [("device", "active"), ("user", "active")]);
    assert_eq!(
        changes
            .iter()
            .find(|c| c.subject == "device")
            .unwrap()
            .subject_id,
        d1
    );
    assert!(
        store
            .status_changes(april + chrono::Duration::seconds(1))
            .await
            .unwrap()
            .is_empty(),
        "nothing changed after the import"
    );
    // The same statuses again change nothing.
    store
        .import(&batch, &code("S01"), april, &nothing, None)
        .await
        .unwrap();
    assert_eq!(store.status_changes(at(23, 0)).await.unwrap().len(), 2);
}

async fn a_task_runs_once_at_a_time(store: &dyn Store) {
    let first = store.lock_task("generate_auto_rules").await.unwrap();
    let first = first.expect("nothing runs it yet");
    assert!(store
        .lock_task("generate_auto_rules")
        .await
        .unwrap()
        .is_none());
    let other = store.lock_task("summarize_file_usage").await.unwrap();
    assert!(other.is_some(), "another task is free");
    first.release().await.unwrap();
    let again = store.lock_task("generate_auto_rules").await.unwrap();
    assert!(again.is_some(), "free once released");
}

/// Two replicas are two stores on one database: a task locked by one is refused to the other,
/// and a replica that goes away without releasing (dropped, as in a crash) frees it.
#[tokio::test]
async fn postgres_replicas_run_a_task_one_at_a_time() {
    let Some(db) = common::PgDb::create().await else {
        return;
    };
    let (one, two) = (db.open().await, db.open().await);
    let held = one.lock_task("summarize_monthly_usage").await.unwrap();
    assert!(held.is_some());
    assert!(two
        .lock_task("summarize_monthly_usage")
        .await
        .unwrap()
        .is_none());
    drop(held);
    // The server ends the closed session a moment later.
    let mut freed = None;
    for _ in 0..50 {
        freed = two.lock_task("summarize_monthly_usage").await.unwrap();
        if freed.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let freed = freed.expect("a dropped lock is freed with its session");
    // Released before the pools close: a pool's close waits for its connections to return.
    freed.release().await.unwrap();
    one.close().await;
    two.close().await;
}

/// On PostgreSQL a `TimeSerial` comes from a sequence, so a write holding a low serial may
/// commit after one holding a higher: the newest settled serial waits for every write that
/// took a serial before it was asked, and is then that serial.
#[tokio::test]
async fn postgres_a_serial_settles_only_once_its_write_ended() {
    let Some(db) = common::PgDb::create().await else {
        return;
    };
    let store = db.open().await;
    let writer = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut open = writer.begin().await.unwrap();
    // What a usage write does first (postgres/mod.rs: the gate shared, then a serial).
    sqlx::query("SELECT pg_advisory_xact_lock_shared(31250, 0)")
        .execute(&mut *open)
        .await
        .unwrap();
    let taken: i64 = sqlx::query_scalar("SELECT nextval('usage_time_serial')")
        .fetch_one(&mut *open)
        .await
        .unwrap();
    let reader = {
        let store = store.clone();
        tokio::spawn(async move { store.max_time_serial().await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !reader.is_finished(),
        "settled while a write with serial {taken} is open"
    );
    // What a person reads beside a task's watermark does not wait for that write (nor hold up
    // the writes queued behind the reader): the newest serial handed out.
    let newest = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        store.newest_time_serial(),
    );
    assert_eq!(newest.await.expect("it does not wait").unwrap(), taken);
    open.commit().await.unwrap();
    assert_eq!(reader.await.unwrap(), taken);
    writer.close().await;
    store.close().await;
}
