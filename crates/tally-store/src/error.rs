use thiserror::Error;

/// Storage failures, each saying what the operator can do about it.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
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
    #[error("{0}")]
    Conflict(String),
}
