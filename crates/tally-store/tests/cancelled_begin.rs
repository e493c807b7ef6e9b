//! A write transaction whose `BEGIN IMMEDIATE` completed but whose `Transaction` never came to
//! be (the request was cancelled in between) must not keep SQLite's write lock once its
//! connection is back in the pool: the next writer gets the lock at once instead of failing
//! after the busy timeout with "database is locked".

use sqlx::Connection;
use tally_store::SqliteStore;

#[tokio::test]
async fn a_begin_never_finished_does_not_keep_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    let pool = store.pool();
    {
        let mut conn = pool.acquire().await.unwrap();
        let tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
        // What a cancelled begin leaves: a transaction open, and nothing to roll it back.
        std::mem::forget(tx);
        assert!(conn.is_in_transaction());
    }
    // Every connection the pool holds is tried: none may still hold the lock.
    for _ in 0..8 {
        let mut conn = pool.acquire().await.unwrap();
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("UPDATE counters SET value = value WHERE name = 'positions'")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}
