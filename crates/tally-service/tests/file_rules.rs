//! The file → rule mapping follows the rules and the files as they change, without a restart:
//! a rule added or edited, a file first stored through ingest, and a file stored by another
//! replica (another `Service` on the same database) all reach the monthly summary, on SQLite
//! and on PostgreSQL.

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
use tally_service::Service;
use tally_store::Store;

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
    for total in store.monthly_totals((0, 999_912)).await.unwrap() {
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

each_backend!(async mapping_follows_rules_and_files);

async fn mapping_follows_rules_and_files(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = tally_store::open(&backend.url(&dir.path().join("t.db")))
        .await
        .unwrap();
    store
        .put_site(&Site {
            code: site(),
            name: "Main".into(),
            alias: None,
            parent: None,
        })
        .await
        .unwrap();
    let device = NewDevice {
        site_code: site(),
        host_name: "pc1".into(),
        fqdn: None,
        os: None,
        serial: None,
    };
    let pc = store.create_device(&device, t(1, 0)).await.unwrap().id;
    let vim = store
        .create_rule(
            &site(),
            RuleOrigin::Manual,
            &spec("Vim", "vim"),
            t(1, 0),
            None,
        )
        .await
        .unwrap();
    let service = Service::new(store.clone(), site());
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
    store
        .create_rule(
            &site(),
            RuleOrigin::Manual,
            &spec("Emacs", "emacs"),
            t(3, 0),
            None,
        )
        .await
        .unwrap();
    store
        .update_rule(vim.id, &spec("Vim", "nvim"), t(3, 0), None)
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
