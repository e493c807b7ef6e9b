//! Group commit on SQLite and on PostgreSQL: uploads that arrive while the writer is busy share
//! one transaction (one `TimeSerial`), each answered as if alone and only once written; without
//! group commit each is its own; past the queue's bound a request is refused as busy, with a
//! time to come back, and nothing of it is stored. The tests run on tokio's single-threaded
//! runtime, where every request below is queued before the writer first runs: which requests
//! share a group is then certain, not a race.

#[path = "../../tally-store/tests/common/pgdb.rs"]
mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use common::Backend;
use futures::future::join_all;
use tally_core::wire::v1::{UsageRecordV1, UserRef};
use tally_core::{FileInfo, Site, SiteCode};
use tally_service::group_commit::IngestMode;
use tally_service::{Service, ServiceError};
use tally_store::{Store, UsageQuery};

each_backend!(async
    uploads_waiting_together_share_one_commit,
    without_group_commit_each_upload_is_its_own,
    past_the_queue_bound_an_upload_is_refused_as_busy,
);

/// A service on a fresh database with one device, writing uploads as `mode` says.
async fn service(backend: &Backend, dir: &std::path::Path, mode: IngestMode) -> (Service, i64) {
    let store: Arc<dyn Store> = tally_store::open(&backend.url(&dir.join("t.db")))
        .await
        .unwrap();
    let site = SiteCode::parse("S01").unwrap();
    store
        .put_site(&Site::central(site.clone(), "Main"))
        .await
        .unwrap();
    let device = tally_core::device::NewDevice::named(&site, "pc1");
    let device = store.create_device(&device, Utc::now()).await.unwrap().id;
    let service = Service::new(store, site).with_ingest_mode(mode);
    // One upload first, so the file and the user are in ingest's caches: a request then
    // reaches the queue without waiting on the database, and every request a test makes at
    // once is queued before the writer runs.
    let warm = records("warm", 1);
    service
        .store_usage(device, "warm", &warm, Utc::now())
        .await
        .unwrap();
    (service, device)
}

/// `n` records of one run each, named `{prefix}-{i}`.
fn records(prefix: &str, n: usize) -> Vec<UsageRecordV1> {
    let end = Utc::now() - chrono::Duration::minutes(5);
    (0..n)
        .map(|i| {
            UsageRecordV1::whole_run(
                format!("{prefix}-{i}"),
                FileInfo {
                    file_name: "code".into(),
                    original_file_name: "code".into(),
                    version: "1.0".into(),
                    product_name: "Code".into(),
                    publisher: "Example".into(),
                    language: 0,
                },
                UserRef {
                    account: "alice".into(),
                    full_name: None,
                },
                end - chrono::Duration::minutes(10),
                end,
            )
        })
        .collect()
}

/// The distinct `TimeSerial`s of everything stored.
async fn serials(service: &Service) -> BTreeSet<i64> {
    let stored = (service.store())
        .usage_records(&UsageQuery::default())
        .await
        .unwrap();
    stored.iter().map(|r| r.time_serial).collect()
}

async fn uploads_waiting_together_share_one_commit(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mode = IngestMode::Grouped {
        writers: 1,
        queue_records: 1000,
    };
    let (service, device) = service(&backend, dir.path(), mode).await;
    let batches: Vec<(String, Vec<UsageRecordV1>)> = (0..8)
        .map(|b| (format!("b{b}"), records(&format!("b{b}"), 3)))
        .chain([("b0".to_string(), records("b0", 3))])
        .collect();
    let now = Utc::now();
    let outcomes = join_all(
        batches
            .iter()
            .map(|(id, rs)| service.store_usage(device, id, rs, now)),
    )
    .await;
    let seen: Vec<_> = outcomes
        .into_iter()
        .map(|o| o.unwrap())
        .map(|o| (o.stored, o.replayed))
        .collect();
    let mut expected = vec![(3, false); 8];
    expected.push((3, true));
    assert_eq!(
        seen, expected,
        "each answered as if alone; b0 again a replay"
    );
    assert_eq!(
        serials(&service).await.len(),
        2,
        "the warm-up's, one for all the rest"
    );
    assert_eq!(service.ingest_waiting(), 0);
}

async fn without_group_commit_each_upload_is_its_own(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (service, device) = service(&backend, dir.path(), IngestMode::OneByOne).await;
    let batches: Vec<_> = (0..4).map(|b| records(&format!("b{b}"), 2)).collect();
    let now = Utc::now();
    let ids: Vec<String> = (0..4).map(|b| format!("b{b}")).collect();
    let outcomes = join_all(
        ids.iter()
            .zip(&batches)
            .map(|(id, rs)| service.store_usage(device, id, rs, now)),
    )
    .await;
    assert!(outcomes.iter().all(|o| o.as_ref().unwrap().stored == 2));
    assert_eq!(
        serials(&service).await.len(),
        1 + 4,
        "the warm-up's and one each"
    );
}

async fn past_the_queue_bound_an_upload_is_refused_as_busy(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mode = IngestMode::Grouped {
        writers: 1,
        queue_records: 5,
    };
    let (service, device) = service(&backend, dir.path(), mode).await;
    // The first is taken even past the bound (nothing waits); the second would pass it.
    let (first, second) = (records("first", 4), records("second", 4));
    let now = Utc::now();
    let (a, b) = futures::join!(
        service.store_usage(device, "first", &first, now),
        service.store_usage(device, "second", &second, now),
    );
    assert_eq!(a.unwrap().stored, 4);
    match b {
        Err(ServiceError::Busy { retry_after, .. }) => assert!(retry_after.as_secs() > 0),
        other => panic!("expected busy, got {other:?}"),
    }
    let stored = (service.store())
        .usage_records(&UsageQuery::default())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1 + 4, "nothing of the refused upload");
    // Once the queue emptied, the same upload is taken.
    let again = service.store_usage(device, "second", &second, now).await;
    assert_eq!(again.unwrap().stored, 4);
}
