//! Store errors by kind, on both backends: a clash with stored data is a conflict that says
//! what clashed, a value the database refuses is invalid, a closed pool is unavailable.

mod common;

use chrono::Utc;
use tally_core::operators::Role;
use tally_core::org::OrgRule;
use tally_core::{Site, SiteCode};
use tally_store::prelude::*;
use tally_store::{ErrorKind, StoreError};

on_both_backends!(
    a_taken_unique_value_is_a_conflict_naming_it,
    a_reference_to_a_missing_row_is_a_conflict,
    a_value_the_database_refuses_is_invalid,
);

fn site(code: &str, name: &str, parent: Option<&str>) -> Site {
    Site {
        parent: parent.map(|p| SiteCode::parse(p).unwrap()),
        ..Site::central(SiteCode::parse(code).unwrap(), name)
    }
}

fn conflict(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
            e.to_string()
        }
        Ok(v) => panic!("expected a conflict, stored {v:?}"),
    }
}

async fn a_taken_unique_value_is_a_conflict_naming_it(store: &dyn Store) {
    store
        .create_operator_token("first", Role::Admin, "hash-1", Utc::now(), None)
        .await
        .unwrap();
    let again = store
        .create_operator_token("second", Role::Auditor, "hash-1", Utc::now(), None)
        .await;
    let message = conflict(again);
    assert!(message.contains("token_hash"), "{message}");
    assert!(message.contains("operator_tokens"), "{message}");
    assert_eq!(store.operator_tokens().await.unwrap().len(), 1);
}

async fn a_reference_to_a_missing_row_is_a_conflict(store: &dyn Store) {
    let orphan = store.put_site(&site("S02", "Branch", Some("S99"))).await;
    let message = conflict(orphan);
    match store.backend() {
        "postgres" => assert!(message.contains("S99"), "{message}"),
        _ => assert!(message.contains("FOREIGN KEY"), "{message}"),
    }
    let rule = OrgRule {
        id: 0,
        org_node: 4242,
        site: None,
        host_name: Some("pc*".into()),
        account: None,
    };
    conflict(store.add_org_rule(&rule, None).await);
    assert!(store.sites().await.unwrap().is_empty());
    assert!(store.org_rules().await.unwrap().is_empty());
}

/// PostgreSQL refuses a NUL byte in text; SQLite keeps it as it is.
async fn a_value_the_database_refuses_is_invalid(store: &dyn Store) {
    let put = store.put_site(&site("S01", "Main\0", None)).await;
    match store.backend() {
        "postgres" => {
            let e = put.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
        }
        _ => {
            put.unwrap();
            let stored = store.sites().await.unwrap();
            assert_eq!(stored[0].name, "Main\0");
        }
    }
}

#[tokio::test]
async fn a_closed_sqlite_pool_is_unavailable() {
    let db = common::SqliteDb::new();
    let store = db.open().await;
    store.pool().close().await;
    let e = store.sites().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

#[tokio::test]
async fn a_closed_postgres_pool_is_unavailable() {
    let Some(db) = common::PgDb::create().await else {
        return;
    };
    let store = db.open().await;
    store.close().await;
    let e = store.sites().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}
