//! Backups of the SQLite file while the server runs: `VACUUM INTO` copies the database as one
//! read transaction sees it, so a backup holds each ingest batch whole or not at all, and in
//! WAL mode it does not block the writers (agents keep uploading). SQLite documents it as the
//! alternative to its C backup API, which through sqlx would need unsafe code and restarts
//! from the first page whenever another connection writes meanwhile; it also compacts the
//! copy.

use std::path::Path;

use super::SqliteStore;
use crate::{Result, StoreError};

impl SqliteStore {
    /// Writes a consistent copy of the database to `out`, which must not exist.
    pub async fn backup_to(&self, out: &Path) -> Result<()> {
        let out = out
            .to_str()
            .ok_or_else(|| StoreError::BadUrl(out.display().to_string()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(out)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// SQLite's own check of every page and index: `None` when sound, else what it found.
    pub async fn integrity_problem(&self) -> Result<Option<String>> {
        let found: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await?;
        Ok((found != ["ok"]).then(|| found.join("; ")))
    }

    /// Every table with its row count, by name: the figures a backup and its restore must
    /// agree on.
    pub async fn table_rows(&self) -> Result<Vec<(String, i64)>> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut rows = Vec::with_capacity(tables.len());
        for table in tables {
            // The names come from the schema itself, quoted as identifiers.
            let quoted = format!("\"{}\"", table.replace('"', "\"\""));
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {quoted}"))
                .fetch_one(&self.pool)
                .await?;
            rows.push((table, n));
        }
        Ok(rows)
    }

    /// Closes every connection: SQLite checkpoints the WAL into the file and removes it, so
    /// the file alone is the database (before it is moved).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
