//! Test databases: a fresh SQLite file in a temporary directory, or a fresh PostgreSQL database
//! created on the server and dropped afterwards (even when the test panics; see `pgdb.rs`,
//! which the server and CLI suites share).

#![allow(dead_code)]

mod pgdb;

use std::sync::Arc;

pub use pgdb::PgDb;
use tally_store::prelude::*;
use tally_store::{PgStore, SqliteStore};

/// A SQLite database file that lives as long as this value.
pub struct SqliteDb {
    pub dir: tempfile::TempDir,
}

impl SqliteDb {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("tally.db")
    }

    pub async fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path())
            .await
            .expect("open sqlite store")
    }
}

impl PgDb {
    pub async fn open(&self) -> PgStore {
        PgStore::open(&self.url).await.expect("open postgres store")
    }
}

/// Either backend behind the trait, with what keeps its database alive.
pub enum Backend {
    Sqlite(SqliteDb, Arc<dyn Store>),
    Postgres(PgDb, Arc<dyn Store>),
}

impl Backend {
    pub fn store(&self) -> &dyn Store {
        match self {
            Backend::Sqlite(_, s) | Backend::Postgres(_, s) => s.as_ref(),
        }
    }
}

pub async fn sqlite() -> Backend {
    let db = SqliteDb::new();
    let store = Arc::new(db.open().await);
    Backend::Sqlite(db, store)
}

pub async fn postgres() -> Option<Backend> {
    let db = PgDb::create().await?;
    let store = Arc::new(db.open().await);
    Some(Backend::Postgres(db, store))
}

/// Declares each named async test once per backend: `sqlite::NAME` and `postgres::NAME`, so the
/// test output shows the suite ran on both.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let backend = $crate::common::sqlite().await;
                    super::$test(backend.store()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some(backend) = $crate::common::postgres().await else { return };
                    super::$test(backend.store()).await;
                }
            )*
        }
    };
}

/// A second, empty database on the backend `store` runs on.
pub async fn fresh_like(store: &dyn Store) -> Backend {
    match store.backend() {
        "postgres" => postgres()
            .await
            .expect("PostgreSQL served the first database"),
        _ => sqlite().await,
    }
}
