//! The file → rule mapping follows the rules and the files as they change, without a restart:
//! a rule added or edited, a file first stored through ingest, and a file stored by another
//! replica (another `Service` on the same database) all reach the monthly summary, on SQLite
//! and on PostgreSQL. A rule change matches again only the files carrying that rule's names,
//! and the usage read's `rule=` answers from the mapping what a scan of every file gives.

#[path = "../../tally-store/tests/common/pgdb.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use common::Backend;
use tally_core::device::NewDevice;
use tally_core::rules::{RuleOrigin, RuleSpec};
use tally_core::tasks::Task;
use tally_core::wire::v1::UsageRecordV1;
use tally_core::{Site, SiteCode};
use tally_service::file_rules::MappingWork;
use tally_service::usage_reads::{self, UsageFilter};
use tally_service::{Service, ServiceError};
use tally_store::{Page, Store};

fn site() -> SiteCode {
    SiteCode::parse("S01").unwrap()
}

fn t(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

/// A rule as the API takes it: a name and the executable it meters, defaults for the rest.
fn spec(name: &str, file_name: &str) -> RuleSpec {
    RuleSpec {
        file_name: file_name.into(),
        ..RuleSpec::named(name)
    }
}

/// One finished run of `file` (at `version`) on day `day`.
fn run(id: &str, file: &str, version: &str, day: u32) -> UsageRecordV1 {
    serde_json::from_value(serde_json::json!({
        "meter_data_id": id,
        "file": {"file_name": file, "original_file_name": file, "version": version,
                 "product_name": "", "publisher": "", "language": 65535},
        "user": {"account": "ann"},
        "start_time": t(day, 9), "start_time_offset": 0,
        "end_time": t(day, 10), "end_time_offset": 0,
        "started": true, "still_running": false,
        "start_not_captured": false, "end_not_captured": false, "in_ts_session": false
    }))
    .unwrap()
}

/// Runs summarised per rule name, over every month.
async fn runs_per_rule(service: &Service) -> HashMap<String, i64> {
    let state = tally_service::maintenance::run(service, Task::SummarizeMonthlyUsage)
        .await
        .unwrap();
    assert_eq!(state.last_error, None);
    let store = service.store();
    let names: HashMap<i64, String> = store
        .rules()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.spec.name))
        .collect();
    let mut runs = HashMap::new();
    for total in store.monthly_totals((0, 999_912), None).await.unwrap() {
        *runs.entry(names[&total.rule_id].clone()).or_default() += total.runs;
    }
    runs
}

async fn upload(service: &Service, device: i64, batch: &str, records: Vec<UsageRecordV1>) {
    let outcome = service
        .store_usage(device, batch, &records, t(20, 0))
        .await
        .unwrap();
    assert_eq!(outcome.stored, records.len() as u64);
}

fn expect(pairs: &[(&str, i64)]) -> HashMap<String, i64> {
    pairs.iter().map(|(n, r)| (n.to_string(), *r)).collect()
}

each_backend!(async
    mapping_follows_rules_and_files,
    a_rule_change_rematches_only_that_rules_files,
    usage_by_rule_answers_as_a_scan_of_every_file_does,
);

async fn mapping_follows_rules_and_files(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, service, pc) = estate(&backend, dir.path()).await;
    let vim = add_rule(store.as_ref(), "Vim", "vim").await;
    let upload = |service, batch, records| upload(service, pc, batch, records);
    upload(
        &service,
        "b1",
        vec![run("1", "vim", "9.0", 2), run("2", "emacs", "29", 2)],
    )
    .await;
    assert_eq!(runs_per_rule(&service).await, expect(&[("Vim", 1)]));

    // A rule added and a rule edited, on the same service: emacs is metered now, and Vim
    // meters nvim instead of vim.
    add_rule(store.as_ref(), "Emacs", "emacs").await;
    store
        .update_rule(vim, &spec("Vim", "nvim"), t(3, 0), None)
        .await
        .unwrap()
        .unwrap();
    let batch = vec![
        run("3", "emacs", "29", 4),
        run("4", "nvim", "0.9", 4),
        run("5", "vim", "9.0", 4),
    ];
    upload(&service, "b2", batch).await;
    assert_eq!(
        runs_per_rule(&service).await,
        expect(&[("Vim", 2), ("Emacs", 1)]),
        "the edited rule meters the new file, no longer the old one"
    );

    // A file first stored now, with the rules unchanged, is mapped as ingest stores it.
    upload(&service, "b3", vec![run("6", "emacs", "30", 5)]).await;
    assert_eq!(
        runs_per_rule(&service).await,
        expect(&[("Vim", 2), ("Emacs", 2)])
    );

    // Another replica stores a file this one never saw; the summary still counts it.
    let replica = Service::new(store.clone(), site());
    upload(&replica, "b4", vec![run("7", "nvim", "0.10", 6)]).await;
    assert_eq!(
        runs_per_rule(&service).await,
        expect(&[("Vim", 3), ("Emacs", 2)])
    );
}

/// A store with site S01 and one device; the service over it and the device's id.
async fn estate(backend: &Backend, dir: &std::path::Path) -> (Arc<dyn Store>, Service, i64) {
    let store: Arc<dyn Store> = tally_store::open(&backend.url(&dir.join("t.db")))
        .await
        .unwrap();
    store
        .put_site(&Site::central(site(), "Main"))
        .await
        .unwrap();
    let device = NewDevice::named(&site(), "pc1");
    let pc = store.create_device(&device, t(1, 0)).await.unwrap().id;
    (store.clone(), Service::new(store, site()), pc)
}

async fn add_rule(store: &dyn Store, name: &str, file: &str) -> i64 {
    let rule = spec(name, file);
    let site = site();
    let created = store.create_rule(&site, RuleOrigin::Manual, &rule, t(1, 0), None);
    created.await.unwrap().id
}

/// Uploads one run of each `(file, version)`, and of 20 programs no rule names.
async fn runs_of(service: &Service, device: i64, batch: &str, files: &[(&str, &str)]) {
    let mut records: Vec<UsageRecordV1> = files
        .iter()
        .enumerate()
        .map(|(i, (file, version))| run(&format!("{batch}-{i}"), file, version, 2))
        .collect();
    for i in 0..20 {
        records.push(run(
            &format!("{batch}-tool{i}"),
            &format!("tool{i}"),
            "1",
            2,
        ));
    }
    upload(service, device, batch, records).await;
}

/// The ids of the stored files rule `name` meters, by reading every file: what the mapping
/// must answer.
async fn scanned(store: &dyn Store, name: &str) -> Vec<i64> {
    let rules = store.rules().await.unwrap();
    let rule = rules.iter().find(|r| r.spec.name == name).unwrap();
    let files = store
        .files(Page {
            after: 0,
            limit: 1000,
        })
        .await
        .unwrap();
    assert!(files.len() < 1000, "one page holds every file");
    let metered = files.iter().filter(|f| rule.spec.matches(&f.info));
    metered.map(|f| f.id).collect()
}

/// The files of the records `/api/v1/usage?rule=RULE` answers, by record id.
async fn records_of(service: &Service, rule: &str) -> Vec<i64> {
    let filter = UsageFilter {
        rule: Some(rule.into()),
        ..Default::default()
    };
    let page = Page {
        after: 0,
        limit: 1000,
    };
    let records = usage_reads::records(service, &filter, page).await.unwrap();
    records.iter().map(|r| r.file_id).collect()
}

async fn mapped(service: &Service, name: &str) -> Vec<i64> {
    let rules = service.file_rules();
    rules.files_metered_by(service.store(), name).await.unwrap()
}

async fn a_rule_change_rematches_only_that_rules_files(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, service, pc) = estate(&backend, dir.path()).await;
    let vim = add_rule(store.as_ref(), "Vim", "vim").await;
    add_rule(store.as_ref(), "Emacs", "emacs").await;
    let files = [
        ("vim", "9.0"),
        ("vim", "9.1"),
        ("nvim", "0.9"),
        ("emacs", "29"),
    ];
    runs_of(&service, pc, "b1", &files).await;
    let rules = service.file_rules();
    rules.refresh(store.as_ref()).await.unwrap();
    let built = MappingWork {
        full_builds: 1,
        files_rematched: 0,
    };
    assert_eq!(rules.work(), built);
    rules.refresh(store.as_ref()).await.unwrap();
    assert_eq!(rules.work(), built, "unchanged rules cost nothing");

    // Edited as another replica would (straight in the store): only the one nvim file is
    // matched again, not the 24 files stored.
    let nvim = spec("Vim", "nvim");
    store.update_rule(vim, &nvim, t(3, 0), None).await.unwrap();
    rules.refresh(store.as_ref()).await.unwrap();
    let after_edit = MappingWork {
        full_builds: 1,
        files_rematched: 1,
    };
    assert_eq!(rules.work(), after_edit);
    assert_eq!(
        mapped(&service, "Vim").await,
        scanned(store.as_ref(), "Vim").await
    );
    assert_eq!(mapped(&service, "Vim").await.len(), 1);

    // Disabled: the same rule edited again, its one file matched again (a disabled rule's
    // past usage is still summarised).
    let off = RuleSpec {
        enabled: false,
        ..nvim
    };
    store.update_rule(vim, &off, t(4, 0), None).await.unwrap();
    // A rule added naming two stored files (vim 9.0 and 9.1): those two only.
    add_rule(store.as_ref(), "Old vim", "vim").await;
    rules.refresh(store.as_ref()).await.unwrap();
    assert_eq!(rules.work().files_rematched, 1 + 1 + 2);
    assert_eq!(mapped(&service, "Old vim").await.len(), 2);

    // Removed: its files lose it, nothing is matched.
    let emacs = store.rules().await.unwrap();
    let emacs = emacs.iter().find(|r| r.spec.name == "Emacs").unwrap().id;
    store.delete_rule(emacs, None).await.unwrap();
    let missing = rules.files_metered_by(store.as_ref(), "Emacs").await;
    assert!(
        matches!(missing, Err(ServiceError::NotFound(_))),
        "{missing:?}"
    );
    assert_eq!(rules.work().files_rematched, 4);
    assert_eq!(rules.work().full_builds, 1);
    assert_eq!(
        runs_per_rule(&service).await,
        expect(&[("Vim", 1), ("Old vim", 2)]),
        "the summaries read the same mapping"
    );
}

async fn usage_by_rule_answers_as_a_scan_of_every_file_does(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, service, pc) = estate(&backend, dir.path()).await;
    let vim = add_rule(store.as_ref(), "Vim", "vim").await;
    add_rule(store.as_ref(), "Emacs", "emacs").await;
    runs_of(&service, pc, "b1", &[("vim", "9.0"), ("emacs", "29")]).await;
    let by_rule = |rule: &str| UsageFilter {
        rule: Some(rule.into()),
        ..Default::default()
    };
    let page = Page {
        after: 0,
        limit: 1000,
    };
    assert_eq!(
        records_of(&service, "vim").await,
        scanned(store.as_ref(), "Vim").await
    );

    // Another replica stores a file this service never saw, and a rule is edited there: the
    // rule= read still answers what a scan of every file gives.
    let replica = Service::new(store.clone(), site());
    runs_of(&replica, pc, "b2", &[("vim", "9.1"), ("emacs", "30")]).await;
    let both = RuleSpec {
        original_file_name: "emacs".into(),
        ..spec("Vim", "vim")
    };
    store.update_rule(vim, &both, t(3, 0), None).await.unwrap();
    for rule in ["Vim", "Emacs"] {
        let want = scanned(store.as_ref(), rule).await;
        assert_eq!(mapped(&service, rule).await, want, "{rule}");
        let mut files = records_of(&service, rule).await;
        files.sort_unstable();
        assert_eq!(files, want, "{rule}: one record per file");
    }
    assert_eq!(mapped(&service, "Vim").await.len(), 4);
    let unknown = usage_reads::records(&service, &by_rule("nano"), page).await;
    assert!(
        matches!(unknown, Err(ServiceError::NotFound(_))),
        "{unknown:?}"
    );
}
