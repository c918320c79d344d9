//! The appender: one task per store that takes every append queued while a transaction is
//! in flight and commits them together (group commit), each checked on its own, so that
//! concurrent appends of one process share a transaction, its locks and its flush.
//!
//! An append is handed to the task and answered when its batch is done; a caller that
//! stops waiting does not cancel it (it may still commit, like any append whose caller
//! went away).

use crate::error::PostgresError;
use crate::projection::Projections;
use crate::sql::append::{append_batch, AppendSql, BatchFailure, Outcome, Unit};
use deadpool_postgres::Pool;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};

/// The most appends one transaction takes.
const MAX_APPENDS: usize = 512;
/// The most events one transaction takes (a batch takes at least one append, however many
/// events it has).
const MAX_EVENTS: usize = 8_192;

struct Job {
    unit: Unit,
    reply: oneshot::Sender<Outcome>,
}

/// The inline projections every batch runs, shared with the store that adds them.
pub(crate) type Inline = Arc<Mutex<Projections>>;

/// The projections to run now (a batch runs with those registered when it starts).
pub(crate) fn current(inline: &Inline) -> Projections {
    // The list is replaced whole under the lock, never left half-changed.
    Arc::clone(&inline.lock().unwrap_or_else(PoisonError::into_inner))
}

/// The handle appends are made through; the task ends when every handle is gone.
#[derive(Clone)]
pub(crate) struct Appender {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Appender {
    /// Starts the task on `runtime`; committed appends advance `appended`.
    pub(crate) fn start(
        runtime: &Handle,
        pool: Pool,
        sql: Arc<AppendSql>,
        notify: bool,
        inline: Inline,
        appended: Arc<watch::Sender<u64>>,
    ) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        let batches = Batches {
            pool,
            sql,
            notify,
            inline,
            appended,
        };
        runtime.spawn(run(queue, batches));
        Self { jobs }
    }

    /// Commits `unit` through the task: its outcome, once its batch is done.
    pub(crate) async fn append(&self, unit: Unit) -> Outcome {
        let stream_id = unit.label();
        let (reply, outcome) = oneshot::channel();
        self.jobs
            .send(Job { unit, reply })
            .map_err(|_| PostgresError::AppenderStopped)?;
        outcome.await.unwrap_or_else(|_| {
            // The task ended with the append in hand: its runtime shut down mid-batch.
            Err(PostgresError::OutcomeUnknown {
                stream_id,
                reason: "the store's appender stopped while the append was in progress".to_owned(),
            }
            .into())
        })
    }
}

/// What the task commits batches with.
struct Batches {
    pool: Pool,
    sql: Arc<AppendSql>,
    notify: bool,
    inline: Inline,
    appended: Arc<watch::Sender<u64>>,
}

async fn run(mut queue: mpsc::UnboundedReceiver<Job>, batches: Batches) {
    while let Some(first) = queue.recv().await {
        // Lets the callers already woken (those the last batch answered) queue their next
        // append before the batch is taken, so that they share its transaction.
        tokio::task::yield_now().await;
        let mut events = first.unit.events();
        let mut batch = vec![first];
        while batch.len() < MAX_APPENDS && events < MAX_EVENTS {
            let Ok(job) = queue.try_recv() else { break };
            events += job.unit.events();
            batch.push(job);
        }
        batches.commit(batch).await;
    }
}

impl Batches {
    /// Commits one batch and answers each of its units.
    async fn commit(&self, batch: Vec<Job>) {
        let (units, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|job| {
                let label = job.unit.label();
                (job.unit, (label, job.reply))
            })
            .unzip();
        let client = match self.pool.get().await {
            Ok(client) => client,
            Err(error) => {
                // No transaction began: nothing was stored. Typed as the pool reports it
                // (a server down or restarting: `ConnectionLost`; no free connection: `Busy`).
                let failure = BatchFailure::NotStored(crate::error::pool_error(error));
                answer_failure(replies, failure);
                return;
            }
        };
        let projections = current(&self.inline);
        match append_batch(&client, &self.sql, self.notify, &projections, units).await {
            Ok((outcomes, last)) => {
                // The signal moves before any caller hears back, so one that appended and
                // then looks at the signal finds its append there.
                if let Some(last) = last {
                    advance(&self.appended, last);
                }
                for ((_, reply), outcome) in replies.into_iter().zip(outcomes) {
                    // A caller that stopped waiting needs no answer.
                    let _ = reply.send(outcome);
                }
            }
            Err(failure) => answer_failure(replies, failure),
        }
    }
}

/// Answers every unit of a batch that failed as a whole with its copy of the failure.
fn answer_failure(replies: Vec<(String, oneshot::Sender<Outcome>)>, failure: BatchFailure) {
    let errors = failure.into_errors(replies.iter().map(|(label, _)| label.as_str()));
    for ((_, reply), error) in replies.into_iter().zip(errors) {
        let _ = reply.send(Err(error));
    }
}

/// Moves the append signal forward to `position` (never back: a notification of an older
/// append may arrive after a newer one was signalled).
pub(crate) fn advance(appended: &watch::Sender<u64>, position: u64) {
    appended.send_if_modified(|latest| {
        let newer = position > *latest;
        if newer {
            *latest = position;
        }
        newer
    });
}
