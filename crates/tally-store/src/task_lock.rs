//! One run of a maintenance task at a time. The scheduler of every server replica and an
//! operator's `tally tasks run` can all decide to run the same task at once; most tasks would
//! only repeat work, but two runs of automatic rule generation create the same rule twice.
//! On PostgreSQL the lock is a session advisory lock, so it spans replicas and a replica that
//! dies frees it with its connection. SQLite serves one server process, so a lock in the
//! process suffices.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

use crate::Result;

/// The first key of Tally's task advisory locks (`pg_try_advisory_lock(int, int)`); the second
/// is the task's.
const TASK_LOCKS: i32 = 0x7A11;

/// Held while a task runs; [`TaskLock::release`] frees it, and so, less promptly, does
/// dropping it (a PostgreSQL lock then goes with its closed connection).
#[derive(Debug)]
pub struct TaskLock(Held);

#[derive(Debug)]
enum Held {
    Process {
        running: Running,
        name: String,
    },
    Postgres {
        conn: Option<PoolConnection<Postgres>>,
        key: i32,
    },
}

impl TaskLock {
    pub async fn release(mut self) -> Result<()> {
        if let Held::Postgres { conn, key } = &mut self.0 {
            if let Some(mut conn) = conn.take() {
                sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                    .bind(TASK_LOCKS)
                    .bind(*key)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }
}

impl Drop for TaskLock {
    fn drop(&mut self) {
        match &mut self.0 {
            Held::Process { running, name } => {
                running.0.lock().expect("task set").remove(name);
            }
            // Not released: closing the session is what frees its advisory locks; back in the
            // pool the connection would keep holding it.
            Held::Postgres { conn, .. } => drop(conn.take().map(PoolConnection::detach)),
        }
    }
}

/// The tasks running in this process (SQLite).
#[derive(Debug, Clone, Default)]
pub(crate) struct Running(Arc<Mutex<HashSet<String>>>);

impl Running {
    pub(crate) fn lock(&self, name: &str) -> Option<TaskLock> {
        let fresh = self.0.lock().expect("task set").insert(name.to_string());
        fresh.then(|| {
            TaskLock(Held::Process {
                running: self.clone(),
                name: name.to_string(),
            })
        })
    }
}

/// The task's advisory lock on its own connection, if no session holds it.
pub(crate) async fn lock_postgres(pool: &PgPool, name: &str) -> Result<Option<TaskLock>> {
    let mut conn = pool.acquire().await?;
    let key = key(name);
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(TASK_LOCKS)
        .bind(key)
        .fetch_one(&mut *conn)
        .await?;
    Ok(locked.then(|| {
        TaskLock(Held::Postgres {
            conn: Some(conn),
            key,
        })
    }))
}

/// A task name's lock key: FNV-1a, stable across builds and replicas.
fn key(name: &str) -> i32 {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_core::tasks::Task;

    #[test]
    fn every_task_has_its_own_key() {
        let keys: HashSet<i32> = Task::ALL.iter().map(|t| key(t.name())).collect();
        assert_eq!(keys.len(), Task::ALL.len());
        assert_eq!(key("summarize_file_usage"), key("summarize_file_usage"));
    }

    #[test]
    fn a_task_runs_once_at_a_time_in_the_process() {
        let running = Running::default();
        let first = running.lock("a").expect("free");
        assert!(running.lock("a").is_none(), "held");
        assert!(running.lock("b").is_some(), "another task is free");
        drop(first);
        assert!(running.lock("a").is_some(), "freed by drop");
    }
}
