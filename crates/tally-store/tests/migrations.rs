//! Schema migrations on both backends: from an empty database; from the first schema version
//! and from the previous one (the newest migration's predecessor, whatever it is) with data in
//! them, which must survive; and refusal of a database newer than the binary.

mod common;
mod upgrade;

use common::{PgDb, SqliteDb};
use tally_store::prelude::*;
use tally_store::{migrator_up_to, PgStore, SqliteStore, StoreError};
use upgrade::{assert_kept, latest, previous, snapshot, tables_changed, Fixture, POSTGRES, SQLITE};

const FIRST: i64 = 1;

/// Data the first release could have written; it must survive the upgrade.
const FIRST_DATA: &[&str] = &[
    "INSERT INTO sites (code, name) VALUES ('S01', 'Main')",
    "INSERT INTO users (account) VALUES ('alice')",
    "INSERT INTO metering_rules (site_code, name, file_name, original_file_name, file_version,
         language, product_name, comment, apply_to_child_sites, enabled, origin, updated_at)
     VALUES ('S01', 'Editor', 'code', '', '*', 65535, '', '', TRUE, TRUE, 'manual',
         '2026-01-01T00:00:00+00:00')",
];

async fn assert_upgraded(store: &dyn Store, binary: i64) {
    let v = store.schema_version().await.unwrap();
    assert_eq!((v.database, v.binary), (binary, binary));
    assert_eq!(store.sites().await.unwrap().len(), 1);
    assert_eq!(store.rules().await.unwrap()[0].spec.name, "Editor");
    assert_eq!(
        store.upsert_user("alice", None).await.unwrap(),
        1,
        "alice kept her id"
    );
    // The newest migration's tables work.
    store
        .create_operator_token("t", tally_core::Role::Admin, "h", chrono::Utc::now(), None)
        .await
        .unwrap();
}

fn assert_too_new(err: StoreError, binary: i64) {
    match err {
        StoreError::SchemaTooNew {
            database,
            binary: b,
        } => {
            assert_eq!((database, b), (binary + 1000, binary));
            let msg = StoreError::SchemaTooNew {
                database,
                binary: b,
            }
            .to_string();
            assert!(msg.contains("newer than this tally binary"), "{msg}");
        }
        other => panic!("expected SchemaTooNew, got {other}"),
    }
}

/// The fixture check sees what a migration changes: migration 11 rebuilds installed_software
/// on both backends (and only creates status_changes); comments and quoting do not mislead it.
#[test]
fn tables_a_migration_changes_are_found() {
    for migrator in [SqliteStore::migrator(), PgStore::migrator()] {
        let history = migrator.iter().find(|m| m.version == 11).unwrap();
        let changed = tables_changed(&history.sql);
        assert!(changed.contains("installed_software"), "{changed:?}");
        assert!(!changed.contains("status_changes"), "{changed:?}");
    }
    let script = "-- rows from before\nDROP TABLE IF EXISTS old;\nUPDATE \"t\" SET a = 1;\n\
                  INSERT INTO n SELECT * FROM src;";
    let changed: Vec<String> = tables_changed(script).into_iter().collect();
    assert_eq!(changed, ["old", "src", "t"]);
}

const FUTURE_MIGRATION: &str = "INSERT INTO _sqlx_migrations
    (version, description, success, checksum, execution_time)
    VALUES ($1, 'from the future', TRUE, $2, 0)";

mod sqlite {
    use super::*;

    /// The database file migrated only up to schema `version`, where an upgrade starts.
    async fn at_version(db: &SqliteDb, version: i64) -> SqliteStore {
        let old = SqliteStore::open_unmigrated(&db.path()).await.unwrap();
        let migrator = migrator_up_to(SqliteStore::migrator(), version);
        old.migrate_with(&migrator).await.unwrap();
        old
    }

    #[tokio::test]
    async fn from_empty_database() {
        let db = SqliteDb::new();
        let store = SqliteStore::open(&db.path()).await.unwrap();
        let v = store.schema_version().await.unwrap();
        assert_eq!(v.database, latest(SqliteStore::migrator()));
    }

    #[tokio::test]
    async fn from_the_first_schema_version() {
        let db = SqliteDb::new();
        let old = at_version(&db, FIRST).await;
        assert_eq!(old.schema_version().await.unwrap().database, FIRST);
        for sql in FIRST_DATA {
            sqlx::query(sql).execute(old.pool()).await.unwrap();
        }
        old.pool().close().await;
        let store = SqliteStore::open(&db.path()).await.unwrap();
        assert_upgraded(&store, latest(SqliteStore::migrator())).await;
    }

    #[tokio::test]
    async fn from_previous_schema_version() {
        let db = SqliteDb::new();
        let migrator = SqliteStore::migrator();
        let old = at_version(&db, previous(migrator)).await;
        let before = Fixture::load(old.pool(), &SQLITE, migrator).await;
        old.pool().close().await;
        let store = SqliteStore::open(&db.path()).await.unwrap();
        assert_kept(&before, &snapshot(store.pool(), &SQLITE).await);
        upgrade::assert_works(&store, store.pool(), latest(migrator)).await;
        upgrade::assert_rule_names_unique(&store).await;
    }

    /// Users that inventories already classified as service accounts (root on pc1) become
    /// service accounts with the upgrade, with the inventory's reason; people stay people.
    #[tokio::test]
    async fn the_upgrade_classifies_system_accounts_from_inventories() {
        let db = SqliteDb::new();
        // Schema 11, the one before migration 12 classified users.
        let old = at_version(&db, 11).await;
        for sql in [
            "INSERT INTO sites (code, name) VALUES ('S01', 'Main')",
            "INSERT INTO devices (site_code, host_name, created_at)
                 VALUES ('S01', 'pc1', '2026-01-05T08:00:00+00:00')",
            "INSERT INTO local_accounts (device_id, name, uid, shell, service_account, reason)
                 SELECT id, 'root', 0, '/bin/bash', 1, 'system uid' FROM devices",
            "INSERT INTO local_accounts (device_id, name, uid, shell, service_account)
                 SELECT id, 'alice', 1000, '/bin/bash', 0 FROM devices",
            "INSERT INTO users (account) VALUES ('root'), ('alice')",
        ] {
            sqlx::query(sql).execute(old.pool()).await.unwrap();
        }
        old.pool().close().await;
        let store = SqliteStore::open(&db.path()).await.unwrap();
        let users = store.users(tally_store::Page::default()).await.unwrap();
        let of = |account: &str| users.iter().find(|u| u.account == account).unwrap();
        assert!(of("root").service_account);
        assert_eq!(
            of("root").service_account_reason.as_deref(),
            Some("system uid, from inventory of pc1")
        );
        assert!(!of("alice").service_account);
    }

    #[tokio::test]
    async fn refuses_a_newer_database() {
        let db = SqliteDb::new();
        let store = SqliteStore::open(&db.path()).await.unwrap();
        let binary = latest(SqliteStore::migrator());
        sqlx::query(FUTURE_MIGRATION)
            .bind(binary + 1000)
            .bind(vec![0u8; 48])
            .execute(store.pool())
            .await
            .unwrap();
        store.pool().close().await;
        let err = SqliteStore::open(&db.path())
            .await
            .err()
            .expect("must refuse");
        assert_too_new(err, binary);
    }

    #[tokio::test]
    async fn data_survives_reopening_the_file() {
        let db = SqliteDb::new();
        let store = SqliteStore::open(&db.path()).await.unwrap();
        store.upsert_user("bob", None).await.unwrap();
        store.pool().close().await;
        let again = SqliteStore::open(&db.path()).await.unwrap();
        assert_eq!(
            again.users(Default::default()).await.unwrap()[0].account,
            "bob"
        );
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(again.pool())
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(again.pool())
            .await
            .unwrap();
        assert_eq!(fk, 1);
    }
}

mod postgres {
    use super::*;

    /// The database at `url` migrated only up to schema `version`, where an upgrade starts.
    async fn at_version(url: &str, version: i64) -> PgStore {
        let old = PgStore::open_unmigrated(url).await.unwrap();
        let migrator = migrator_up_to(PgStore::migrator(), version);
        old.migrate_with(&migrator).await.unwrap();
        old
    }

    #[tokio::test]
    async fn from_empty_database() {
        let Some(db) = PgDb::create().await else {
            return;
        };
        let store = PgStore::open(&db.url).await.unwrap();
        assert_eq!(
            store.schema_version().await.unwrap().database,
            latest(PgStore::migrator())
        );
        store.close().await;
    }

    #[tokio::test]
    async fn from_the_first_schema_version() {
        let Some(db) = PgDb::create().await else {
            return;
        };
        let old = at_version(&db.url, FIRST).await;
        for sql in FIRST_DATA {
            sqlx::query(sql).execute(old.pool()).await.unwrap();
        }
        old.close().await;
        let store = PgStore::open(&db.url).await.unwrap();
        assert_upgraded(&store, latest(PgStore::migrator())).await;
        store.close().await;
    }

    #[tokio::test]
    async fn from_previous_schema_version() {
        let Some(db) = PgDb::create().await else {
            return;
        };
        let migrator = PgStore::migrator();
        let old = at_version(&db.url, previous(migrator)).await;
        let before = Fixture::load(old.pool(), &POSTGRES, migrator).await;
        old.close().await;
        let store = PgStore::open(&db.url).await.unwrap();
        assert_kept(&before, &snapshot(store.pool(), &POSTGRES).await);
        upgrade::assert_works(&store, store.pool(), latest(migrator)).await;
        upgrade::assert_rule_names_unique(&store).await;
        store.close().await;
    }

    #[tokio::test]
    async fn refuses_a_newer_database() {
        let Some(db) = PgDb::create().await else {
            return;
        };
        let store = PgStore::open(&db.url).await.unwrap();
        let binary = latest(PgStore::migrator());
        sqlx::query(FUTURE_MIGRATION)
            .bind(binary + 1000)
            .bind(vec![0u8; 48])
            .execute(store.pool())
            .await
            .unwrap();
        store.close().await;
        let err = PgStore::open(&db.url).await.err().expect("must refuse");
        assert_too_new(err, binary);
    }

    #[tokio::test]
    async fn usage_table_is_range_partitioned_by_end_time() {
        let Some(db) = PgDb::create().await else {
            return;
        };
        let store = PgStore::open(&db.url).await.unwrap();
        let key: String = sqlx::query_scalar("SELECT pg_get_partkeydef('usage_records'::regclass)")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(key, "RANGE (end_time)");
        store.close().await;
    }
}
