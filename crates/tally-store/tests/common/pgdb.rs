//! A fresh PostgreSQL database per test, created on the server at 127.0.0.1:5432 (or
//! `TALLY_TEST_POSTGRES_URL`) and dropped afterwards, even when the test panics; and the choice
//! of backend a server-level test runs on. The store, server and CLI suites share this file
//! (the latter two include it by path), so "one switch" means the same thing in all three:
//! without a server the PostgreSQL half is skipped with a message, and with `CI=true` it is
//! mandatory.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;

pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn admin_url() -> String {
    std::env::var("TALLY_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
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
                // Written past the test harness's capture, so the skip shows in the output;
                // once per test binary, not once per test.
                use std::io::Write;
                static NAMED: std::sync::Once = std::sync::Once::new();
                NAMED.call_once(|| {
                    let _ = writeln!(
                        std::io::stderr(),
                        "SKIPPED: the PostgreSQL halves of the tests: needs PostgreSQL at {admin} ({e}); to run: apt-get install postgresql, or set TALLY_TEST_POSTGRES_URL"
                    );
                });
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

    /// [`PgDb::create`] for tests that run no async runtime of their own (the CLI suite).
    pub fn create_blocking() -> Option<Self> {
        block_on(Self::create()).unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // FORCE ends the connections a store or a server process still holds.
        let dropped = block_on(async move {
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .map(|_| ())
        });
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// Runs `work` to completion on a runtime of its own in a thread of its own: usable from a
/// synchronous test, from inside another runtime, and from `Drop` while a test unwinds (so a
/// panic in `work` comes back as the thread's error instead of aborting).
fn block_on<F>(work: F) -> std::thread::Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(work)
    })
    .join()
}

/// The database a server or CLI test runs on. SQLite needs nothing made in advance: its file
/// lives in the test's own directory.
pub enum Backend {
    Sqlite,
    Postgres(PgDb),
}

impl Backend {
    /// The name the server reports for it (`Store::backend`, `/healthz`'s `database`).
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The database URL of this backend, with SQLite's file at `sqlite_file`.
    pub fn url(&self, sqlite_file: &Path) -> String {
        match self {
            Backend::Sqlite => format!("sqlite://{}", sqlite_file.display()),
            Backend::Postgres(db) => db.url.clone(),
        }
    }

    /// Executes `sql` (one or more statements) on the database at `url`, outside the store:
    /// what a test does behind Tally's back.
    pub async fn execute(&self, url: &str, sql: &str) {
        match self {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            }
            Backend::Postgres(_) => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            }
        }
    }
}

/// Declares each named test once per backend, as `sqlite::NAME` and `postgres::NAME`, calling
/// `NAME(backend: Backend)`; the test output shows the suite ran on both. `async` tests run
/// under tokio. A test function left out of the list is unused code, which clippy refuses.
#[macro_export]
macro_rules! each_backend {
    (async $($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::common::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some(db) = $crate::common::PgDb::create().await else { return };
                    super::$test($crate::common::Backend::Postgres(db)).await;
                }
            )*
        }
    };
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $test() {
                    super::$test($crate::common::Backend::Sqlite);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $test() {
                    let Some(db) = $crate::common::PgDb::create_blocking() else { return };
                    super::$test($crate::common::Backend::Postgres(db));
                }
            )*
        }
    };
}
