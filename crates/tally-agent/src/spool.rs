//! The crash-safe spool: a record is durable (SQLite, WAL, synchronous FULL) before it is
//! offered for upload, and deleted only after the server acknowledges it. Ids are never reused
//! (AUTOINCREMENT): a batch is named by its id range, and a reused range would look like a replay.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::SqlitePool;
use tally_core::wire::v1::UsageRecordV1;

pub struct Spool {
    pool: SqlitePool,
}

impl Spool {
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePool::connect_with(options).await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL)")
            .execute(&pool)
            .await?;
        Ok(Self { pool })
    }

    /// Writes records durably; returns once they are on disk.
    pub async fn push(&self, records: &[UsageRecordV1]) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        for r in records {
            sqlx::query("INSERT INTO spool (record) VALUES ($1)")
                .bind(serde_json::to_string(r)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The oldest records, at most `limit`, with the id range that names them as a batch.
    pub async fn peek(&self, limit: i64) -> anyhow::Result<Option<(i64, i64, Vec<UsageRecordV1>)>> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, record FROM spool ORDER BY id LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        let (Some(first), Some(last)) = (rows.first().map(|r| r.0), rows.last().map(|r| r.0))
        else {
            return Ok(None);
        };
        let records = rows
            .iter()
            .map(|(_, json)| serde_json::from_str(json))
            .collect::<Result<_, _>>()?;
        Ok(Some((first, last, records)))
    }

    /// Forgets records the server acknowledged.
    pub async fn ack(&self, first: i64, last: i64) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM spool WHERE id BETWEEN $1 AND $2")
            .bind(first)
            .bind(last)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn len(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM spool")
            .fetch_one(&self.pool)
            .await?)
    }
}
