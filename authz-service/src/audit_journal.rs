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
//! If a batch fails, each of its callers writes its event on its own
//! ([`audit::record_alone`]), so each gets the precise error for its row
//! (contention, database away) and a bad row cannot fail its neighbours.

use tokio::sync::{mpsc, oneshot};

use crate::audit::{self, AuditEvent};
use crate::storage::{self, Db};
use crate::time::now_unix;

/// Events waiting at most; a caller beyond that waits for room.
const QUEUE: usize = 4096;
/// Events per transaction at most, so one commit stays short.
const BATCH: usize = 256;

struct Pending {
    at: i64,
    event: AuditEvent,
    /// `true` once the row is committed; `false` if the batch failed.
    committed: oneshot::Sender<bool>,
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
    pub async fn record(&self, event: AuditEvent) -> Result<(), sqlx::Error> {
        let (committed, answer) = oneshot::channel();
        let pending = Pending { at: now_unix(), event: event.clone(), committed };
        if self.queue.send(pending).await.is_ok() && answer.await == Ok(true) {
            return Ok(());
        }
        audit::record_alone(&self.db, &event).await
    }
}

async fn write_batches(db: Db, mut waiting: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH);
    while waiting.recv_many(&mut batch, BATCH).await > 0 {
        let committed = write(&db, &batch).await.is_ok();
        for pending in batch.drain(..) {
            // A caller that went away (its request was cancelled) needs no answer.
            let _ = pending.committed.send(committed);
        }
    }
}

async fn write(db: &Db, batch: &[Pending]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    for pending in batch {
        storage::audit_events::insert(&mut tx, pending.at, &pending.event).await?;
    }
    tx.commit().await
}
