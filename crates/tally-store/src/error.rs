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
    #[error("could not create the data directory or database file {path}: {source}")]
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
        DbErrorKind::UniqueViolation => {
            StoreError::Conflict(describe(db.as_ref(), "that value is stored already"))
        }
        DbErrorKind::ForeignKeyViolation => StoreError::Conflict(describe(
            db.as_ref(),
            "a reference to a row that does not exist, or a delete of a row still referred to",
        )),
        DbErrorKind::NotNullViolation | DbErrorKind::CheckViolation => {
            StoreError::Invalid(describe(db.as_ref(), "a value the database refuses"))
        }
        _ if unavailable(db.as_ref()) => StoreError::Unavailable(sqlx::Error::Database(db)),
        _ if invalid_value(db.as_ref()) => {
            StoreError::Invalid(format!("the database refused a value: {}", db.message()))
        }
        _ => StoreError::Database(sqlx::Error::Database(db)),
    }
}

/// What clashed, as precisely as the backend says: PostgreSQL names the table and gives the
/// key and value (`devices: Key (org_node)=(9) is not present in table "org_nodes"`); SQLite
/// names `table.column` for a unique value, and nothing for a foreign key.
fn describe(db: &dyn DatabaseError, what: &str) -> String {
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return match (pg.table(), pg.detail()) {
            (Some(table), Some(detail)) => format!("{table}: {}", detail.trim_end_matches('.')),
            _ => format!("{what} ({})", pg.message()),
        };
    }
    match db.message().split_once("failed: ") {
        Some((_, columns)) => format!("{columns}: {what}"),
        None => format!("{what} ({})", db.message()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlx_failures_become_kinds() {
        let kind = |e: sqlx::Error| StoreError::from(e).kind();
        assert_eq!(kind(sqlx::Error::RowNotFound), ErrorKind::NotFound);
        assert_eq!(kind(sqlx::Error::PoolTimedOut), ErrorKind::Unavailable);
        assert_eq!(kind(sqlx::Error::PoolClosed), ErrorKind::Unavailable);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(kind(sqlx::Error::Io(io)), ErrorKind::Unavailable);
        assert_eq!(kind(sqlx::Error::Protocol("?".into())), ErrorKind::Failed);
        assert_eq!(
            StoreError::Corrupt {
                column: "devices.status",
                value: "lost".into()
            }
            .kind(),
            ErrorKind::Failed
        );
    }
}
