//! Storage failures, typed by what the caller can do about them: a missing row, a clash with
//! what is stored, a value the database refuses, or a database that cannot be reached. The
//! server maps each [`ErrorKind`] to its HTTP status, so a name conflict never answers as an
//! outage.

use sqlx::error::{DatabaseError, ErrorKind as DbErrorKind};
use thiserror::Error;

/// Storage failures, each saying what the operator can do about it.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A row the operation needs is not there.
    #[error("{0}")]
    NotFound(String),
    /// The change clashes with what is stored: a unique value taken, a reference to a row that
    /// does not exist, or a concurrent change that got there first.
    #[error("{0}")]
    Conflict(String),
    /// The database refused a value (a check, a missing required value, a value out of range).
    #[error("{0}")]
    Invalid(String),
    /// The database cannot be reached or is overloaded: connection, pool timeout, I/O.
    #[error(
        "the database is unavailable: {0}; check that it is running and reachable, then retry"
    )]
    Unavailable(sqlx::Error),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error(
        "could not apply database migrations: {0}; check that the database user may create tables"
    )]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the database is at schema version {database}, newer than this tally binary understands \
         (up to {binary}); run a tally release at least as new as the one that last used this database"
    )]
    SchemaTooNew { database: i64, binary: i64 },
    #[error("{0:?} is not a database URL; use sqlite://PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
    #[error(
        "stored value {value:?} in {column} is not valid; the database was changed outside tally"
    )]
    Corrupt { column: &'static str, value: String },
    #[error("could not create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

/// What kind of failure a [`StoreError`] is, for callers that answer differently to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    Invalid,
    Unavailable,
    /// Anything else: a bug, a damaged database, a failed migration.
    Failed,
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::Invalid(_) => ErrorKind::Invalid,
            StoreError::Unavailable(_) | StoreError::DataDir { .. } => ErrorKind::Unavailable,
            StoreError::Database(_)
            | StoreError::Migrate(_)
            | StoreError::SchemaTooNew { .. }
            | StoreError::BadUrl(_)
            | StoreError::Corrupt { .. } => ErrorKind::Failed,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(db) => from_database(db),
            sqlx::Error::RowNotFound => {
                StoreError::NotFound("the row the operation needs does not exist".into())
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            other => StoreError::Database(other),
        }
    }
}

/// Classifies an error the database itself returned, on either backend.
fn from_database(db: Box<dyn DatabaseError>) -> StoreError {
    match db.kind() {
        DbErrorKind::UniqueViolation => StoreError::Conflict(format!(
            "{} exists already ({})",
            clash(db.as_ref()),
            db.message()
        )),
        DbErrorKind::ForeignKeyViolation => StoreError::Conflict(format!(
            "{} refers to a row that does not exist, or is still referred to ({})",
            clash(db.as_ref()),
            db.message()
        )),
        DbErrorKind::NotNullViolation | DbErrorKind::CheckViolation => {
            StoreError::Invalid(format!("{}: {}", clash(db.as_ref()), db.message()))
        }
        _ if unavailable(db.as_ref()) => StoreError::Unavailable(sqlx::Error::Database(db)),
        _ if invalid_value(db.as_ref()) => {
            StoreError::Invalid(format!("the database refused a value: {}", db.message()))
        }
        _ => StoreError::Database(sqlx::Error::Database(db)),
    }
}

/// What clashed, as precisely as the backend says: PostgreSQL names the table and gives the
/// key and value (`Key (name)=(Office)`); SQLite's message names `table.column`.
fn clash(db: &dyn DatabaseError) -> String {
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        let table = pg.table().unwrap_or("a row");
        return match pg.detail() {
            Some(detail) => format!("{table}: {}", detail.trim_end_matches('.')),
            None => table.to_string(),
        };
    }
    match db.message().split_once("failed: ") {
        Some((_, columns)) => columns.to_string(),
        None => "a row".to_string(),
    }
}

/// Connection failures, lack of resources, shutdown, busy or locked databases, I/O errors: the
/// database is there but cannot serve now.
fn unavailable(db: &dyn DatabaseError) -> bool {
    let code = db.code().unwrap_or_default();
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        return ["08", "53", "57P", "58"]
            .iter()
            .any(|c| code.starts_with(c));
    }
    // SQLite: the primary result code is the low byte of the extended one.
    let primary = code.parse::<i32>().unwrap_or_default() & 0xff;
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    [BUSY, LOCKED, IOERR, FULL, CANTOPEN].contains(&primary)
}

/// PostgreSQL's data exceptions (class 22): a value out of range, a text with a NUL byte.
fn invalid_value(db: &dyn DatabaseError) -> bool {
    db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some_and(|pg| pg.code().starts_with("22"))
}
