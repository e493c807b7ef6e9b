//! Group commit for agent uploads and heartbeats. A million agents send many small uploads and
//! heartbeats; written one transaction each, a site spends its time syncing the disk (SQLite,
//! FULL) or waiting on locks, not storing records. They instead wait in a queue, and a writer
//! takes everything waiting (up to a bound) into one transaction per kind: one sync for many
//! requests. Each is still answered only after the transaction that holds it committed, so an
//! agent deletes from its spool only what is durable.
//!
//! A group that fails is retried one upload at a time, so one upload the database refuses
//! fails alone. When more records wait than the writers can store in a few seconds the queue
//! refuses new uploads ([`ServiceError::Busy`]): agents keep them spooled and come back later,
//! instead of timing out with their work half done.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tally_store::{BatchOutcome, Heartbeat, Store, UsageBatchRows};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::{Result, ServiceError};

/// Most records in one group; a larger group only delays the uploads at its front.
const GROUP_RECORDS: usize = 20_000;
/// Most uploads in one group.
const GROUP_BATCHES: usize = 1_000;
/// Records waiting (queued, not yet in a transaction) above which new uploads are refused: a
/// few seconds of work at the rates BENCHMARKS.md shows.
pub const QUEUE_RECORDS: usize = 200_000;
/// How long a refused agent is asked to wait, before its own jitter.
pub const BUSY_RETRY: Duration = Duration::from_secs(60);

/// How a service writes uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestMode {
    /// Concurrent uploads share transactions, on `writers` writers; past `queue_records`
    /// records waiting, uploads are refused as [`ServiceError::Busy`].
    Grouped {
        writers: usize,
        queue_records: usize,
    },
    /// Each upload is its own transaction (the comparison in BENCHMARKS.md).
    OneByOne,
}

/// What waits in the queue, with where its answer goes.
enum Pending {
    Usage {
        batch: UsageBatchRows,
        reply: oneshot::Sender<Result<BatchOutcome>>,
    },
    Beat {
        beat: Heartbeat,
        reply: oneshot::Sender<Result<()>>,
    },
}

impl Pending {
    /// Records it brings (a heartbeat counts as one).
    fn weight(&self) -> usize {
        match self {
            Pending::Usage { batch, .. } => batch.records.len().max(1),
            Pending::Beat { .. } => 1,
        }
    }
}

/// Adds `weight` to the records `waiting` unless that would take them past `limit`, in one
/// atomic step, so requests arriving together cannot all pass one check and overshoot; an empty
/// queue takes anything (a batch larger than the limit alone must still go). `Err` holds the
/// records waiting when refused.
fn admit(waiting: &AtomicUsize, weight: usize, limit: usize) -> std::result::Result<(), usize> {
    waiting
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
            (now == 0 || now + weight <= limit).then_some(now + weight)
        })
        .map(|_| ())
}

/// The queue uploads wait in and the writers that empty it.
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Pending>,
    /// Records queued and not yet taken by a writer.
    waiting: Arc<AtomicUsize>,
    /// Records waiting past which a request is refused.
    limit: usize,
}

impl GroupCommit {
    /// Starts `writers` writers on the current runtime, refusing requests while more than
    /// `limit` records wait. The writers end when this is dropped.
    pub fn start(store: Arc<dyn Store>, writers: usize, limit: usize) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(Mutex::new(receiver));
        let waiting = Arc::new(AtomicUsize::new(0));
        for _ in 0..writers.max(1) {
            let writer = Writer {
                store: store.clone(),
                receiver: receiver.clone(),
                waiting: waiting.clone(),
            };
            tokio::spawn(writer.run());
        }
        Self {
            queue,
            waiting,
            limit,
        }
    }

    /// Stores `batch` in the next group and answers once that group committed.
    pub async fn store(&self, batch: UsageBatchRows) -> Result<BatchOutcome> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Pending::Usage { batch, reply })?;
        answer
            .await
            .map_err(|_| ServiceError::Internal("a usage writer stopped mid-write".into()))?
    }

    /// Records `beat` with the next group and answers once that group committed.
    pub async fn heartbeat(&self, beat: Heartbeat) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Pending::Beat { beat, reply })?;
        answer
            .await
            .map_err(|_| ServiceError::Internal("a usage writer stopped mid-write".into()))?
    }

    fn enqueue(&self, pending: Pending) -> Result<()> {
        let weight = pending.weight();
        if let Err(waiting) = admit(&self.waiting, weight, self.limit) {
            return Err(ServiceError::Busy {
                message: format!(
                    "the server has {waiting} usage records waiting to be written; \
                     the agent keeps its records and sends them later"
                ),
                retry_after: BUSY_RETRY,
            });
        }
        self.queue.send(pending).map_err(|_| {
            self.waiting.fetch_sub(weight, Ordering::Relaxed);
            ServiceError::Internal("the usage writers stopped".into())
        })
    }

    /// Records queued and not yet being written.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

struct Writer {
    store: Arc<dyn Store>,
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<Pending>>>,
    waiting: Arc<AtomicUsize>,
}

impl Writer {
    /// Writes group after group until the queue closes. Each group is written by a task of its
    /// own: a panic there fails that group's requests (their answers are dropped: "stopped
    /// mid-write") and this writer goes on with the next.
    async fn run(self) {
        while let Some(group) = self.next_group().await {
            let store = self.store.clone();
            if let Err(e) = tokio::spawn(write(store, group)).await {
                tracing::error!(error = %e, "a group of uploads failed to be written; its requests were answered with an error");
            }
        }
    }

    /// Waits for one request, then takes whatever else is already waiting, up to the bounds.
    /// The receiver is held only while gathering, so another writer gathers the next group
    /// while this one writes.
    async fn next_group(&self) -> Option<Vec<Pending>> {
        let mut receiver = self.receiver.lock().await;
        let first = receiver.recv().await?;
        let mut records = first.weight();
        let mut group = vec![first];
        while records < GROUP_RECORDS && group.len() < GROUP_BATCHES {
            match receiver.try_recv() {
                Ok(next) => {
                    records += next.weight();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        self.waiting.fetch_sub(records, Ordering::Relaxed);
        Some(group)
    }
}

async fn write(store: Arc<dyn Store>, group: Vec<Pending>) {
    let (mut batches, mut usage_replies, mut beats, mut beat_replies) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for pending in group {
        match pending {
            Pending::Usage { batch, reply } => {
                batches.push(batch);
                usage_replies.push(reply);
            }
            Pending::Beat { beat, reply } => {
                beats.push(beat);
                beat_replies.push(reply);
            }
        }
    }
    if !batches.is_empty() {
        write_usage(&store, batches, usage_replies).await;
    }
    if !beats.is_empty() {
        write_heartbeats(&store, beats, beat_replies).await;
    }
}

/// One transaction for every upload of the group; if it fails, one per upload, so only
/// an upload the database refuses fails.
async fn write_usage(
    store: &Arc<dyn Store>,
    batches: Vec<UsageBatchRows>,
    replies: Vec<oneshot::Sender<Result<BatchOutcome>>>,
) {
    match store.insert_usage_batches(&batches).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) if batches.len() == 1 => {
            let reply = replies.into_iter().next().expect("one reply per batch");
            let _ = reply.send(Err(e.into()));
        }
        Err(e) => {
            tracing::warn!(error = %e, uploads = batches.len(), "a group of uploads failed; writing them one by one");
            for (batch, reply) in batches.into_iter().zip(replies) {
                let outcome = store.insert_usage_batches(&[batch]).await;
                let outcome = outcome.map(|mut o| o.pop().expect("one outcome"));
                let _ = reply.send(outcome.map_err(Into::into));
            }
        }
    }
}

/// One transaction for every heartbeat of the group; if it fails, one per heartbeat.
async fn write_heartbeats(
    store: &Arc<dyn Store>,
    beats: Vec<Heartbeat>,
    replies: Vec<oneshot::Sender<Result<()>>>,
) {
    if let Err(e) = store.agent_heartbeats(&beats).await {
        if beats.len() > 1 {
            tracing::warn!(error = %e, heartbeats = beats.len(), "a group of heartbeats failed; writing them one by one");
        }
        for (beat, reply) in beats.into_iter().zip(replies) {
            let written = store.agent_heartbeats(std::slice::from_ref(&beat)).await;
            let _ = reply.send(written.map_err(Into::into));
        }
        return;
    }
    for reply in replies {
        let _ = reply.send(Ok(()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_admitted_together_never_take_the_queue_past_its_bound() {
        let waiting = Arc::new(AtomicUsize::new(0));
        let (weight, limit) = (7, 1_000);
        let admitted: usize = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let waiting = waiting.clone();
                    scope.spawn(move || {
                        (0..1_000)
                            .filter(|_| admit(&waiting, weight, limit).is_ok())
                            .count()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        });
        let now = waiting.load(Ordering::Relaxed);
        assert_eq!(now, admitted * weight);
        assert_eq!(
            now,
            limit / weight * weight,
            "filled to the bound, not past it"
        );
        assert_eq!(
            admit(&waiting, 1, limit),
            Ok(()),
            "room for one more record"
        );
        assert_eq!(admit(&waiting, weight, limit), Err(now + 1));
        // An empty queue takes a batch larger than the bound on its own.
        assert_eq!(admit(&AtomicUsize::new(0), limit * 2, limit), Ok(()));
    }
}
