//! Schema versioning shared by both backends: refuse a database that a newer binary migrated.

use sqlx::migrate::{Migrate, Migrator};

use crate::{Result, StoreError};

/// The newest migration applied to a database, and the newest this binary ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    pub database: i64,
    pub binary: i64,
}

/// Applies the migrations this binary knows, after checking the database is not ahead of it.
/// sqlx would also stop on an unknown applied migration, but with a message that does not tell
/// an operator what to do.
pub(crate) async fn migrate<C>(conn: &mut C, migrator: &Migrator) -> Result<SchemaVersion>
where
    C: Migrate + Send,
{
    conn.ensure_migrations_table().await?;
    let binary = newest(migrator);
    let database = current(conn).await?;
    if database > binary {
        return Err(StoreError::SchemaTooNew { database, binary });
    }
    // Takes the backend's migration lock (an advisory lock on PostgreSQL), so replicas starting
    // together apply each migration once, and checks applied migrations' checksums.
    migrator.run_direct(conn).await?;
    Ok(SchemaVersion {
        database: binary,
        binary,
    })
}

/// The migrations up to and including `version`: lets tests build a database as an older
/// release left it.
pub fn migrator_up_to(migrator: &Migrator, version: i64) -> Migrator {
    let migrations: Vec<_> = migrator
        .iter()
        .filter(|m| m.version <= version)
        .cloned()
        .collect();
    Migrator {
        migrations: migrations.into(),
        ..Migrator::DEFAULT
    }
}

pub(crate) async fn current<C: Migrate + Send>(conn: &mut C) -> Result<i64> {
    let applied = conn.list_applied_migrations().await?;
    Ok(applied.iter().map(|m| m.version).max().unwrap_or(0))
}

pub(crate) fn newest(migrator: &Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}
