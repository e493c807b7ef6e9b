//! Test databases: a fresh SQLite file in a temporary directory, or a fresh PostgreSQL database
//! created on the server and dropped afterwards (even when the test panics).

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use sqlx::Connection;
use tally_store::prelude::*;
use tally_store::{PgStore, SqliteStore};

pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn admin_url() -> String {
    std::env::var("TALLY_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

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

/// A PostgreSQL database made for one test and dropped when this value is.
pub struct PgDb {
    pub name: String,
    pub url: String,
    admin: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl PgDb {
    /// `None` (with a message) when no server is reachable outside CI; a panic in CI, where a
    /// skipped backend would be a silent gap.
    pub async fn create() -> Option<Self> {
        let admin = admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(e) if !in_ci() => {
                // Written past the test harness's capture, so the skip shows in the output.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: PostgreSQL not reachable at {admin} ({e}); set TALLY_TEST_POSTGRES_URL to run the PostgreSQL storage tests"
                );
                return None;
            }
            Err(e) => panic!("CI=true and PostgreSQL is not reachable at {admin}: {e}"),
        };
        let name = format!(
            "tally_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros() % 1_000_000
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("TALLY_TEST_POSTGRES_URL must end in /DATABASE"),
        };
        Some(Self { name, url, admin })
    }

    pub async fn open(&self) -> PgStore {
        PgStore::open(&self.url).await.expect("open postgres store")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs outside async context (possibly while a test unwinds): use a thread with its
        // own runtime. FORCE ends the store's pooled connections.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map(|_| ())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
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
