//! Group commit for audit events that go with no other change: a token issued
//! by `client_credentials`, a refused grant, a refused admin call.
//!
//! Each such event used to be a transaction of its own. Under concurrent load
//! those transactions queue for the database's write lock one by one (SQLite
//! has one writer), which cost a third of the token endpoint's throughput.
//! Here one task writes every event that is waiting in one transaction, and
//! each caller is answered only once the transaction holding its row has
//! committed — the rule stays "no token handed out without its audit row".
//!
//! If a batch fails because of its rows, each of its callers writes its event
//! on its own ([`audit::record_alone`]), so a bad row cannot fail its
//! neighbours. If it fails because the database cannot be reached, every
//! caller is answered "unavailable" at once: writing alone would only wait
//! for the pool a second time, holding the request for twice the pool's
//! timeout before its 503.

use tokio::sync::{mpsc, oneshot};

use crate::audit::{self, AuditEvent};
use crate::error::Error;
use crate::storage::{self, Db};
use crate::time::now_unix;

/// Events waiting at most; a caller beyond that waits for room.
const QUEUE: usize = 4096;
/// Events per transaction at most, so one commit stays short.
const BATCH: usize = 256;

struct Pending {
    at: i64,
    event: AuditEvent,
    committed: oneshot::Sender<Outcome>,
}

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Committed,
    /// The database could not be reached (pool timeout, connection lost, shut down).
    Unavailable,
    /// Anything else: each row is retried alone.
    Failed,
}

/// The writer's queue. Cloning is cheap; the writer task ends when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Journal {
    db: Db,
    queue: mpsc::Sender<Pending>,
}

impl Journal {
    /// Starts the writer task on the current Tokio runtime.
    pub fn start(db: Db) -> Journal {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(db.clone(), waiting));
        Journal { db, queue }
    }

    /// Records `event` and returns once its row is committed.
    pub async fn record(&self, event: AuditEvent) -> Result<(), Error> {
        let (committed, answer) = oneshot::channel();
        let pending = Pending { at: now_unix(), event: event.clone(), committed };
        if self.queue.send(pending).await.is_ok() {
            match answer.await {
                Ok(Outcome::Committed) => return Ok(()),
                Ok(Outcome::Unavailable) => {
                    return Err(Error::Unavailable("database: the audit log cannot be written".into()));
                }
                Ok(Outcome::Failed) | Err(_) => {}
            }
        }
        Ok(audit::record_alone(&self.db, &event).await?)
    }
}

async fn write_batches(db: Db, mut waiting: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH);
    while waiting.recv_many(&mut batch, BATCH).await > 0 {
        // Let the requests that are ready run first: under load many of them
        // are about to add their event, and one statement for all of them
        // costs far less than one each (a write is a hand-off to SQLite's
        // thread and a WAL append). When nothing else is ready this returns at
        // once, so an idle server adds no wait.
        tokio::task::yield_now().await;
        while batch.len() < BATCH {
            match waiting.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let outcome = match write(&db, &batch).await {
            Ok(()) => Outcome::Committed,
            Err(e) if storage::is_unreachable(&e) => Outcome::Unavailable,
            Err(_) => Outcome::Failed,
        };
        for pending in batch.drain(..) {
            // A caller that went away (its request was cancelled) needs no answer.
            let _ = pending.committed.send(outcome);
        }
    }
}

async fn write(db: &Db, batch: &[Pending]) -> Result<(), sqlx::Error> {
    let rows: Vec<(i64, &AuditEvent)> = batch.iter().map(|p| (p.at, &p.event)).collect();
    // One statement, atomic on its own: the whole batch is written or none of it.
    let mut conn = db.write_alone().await?;
    storage::audit_events::insert_many(&mut conn, &rows).await
}
