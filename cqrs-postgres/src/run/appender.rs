//! The appender: one task per store that takes every append queued while a transaction is
//! in flight and commits them together (group commit), each checked on its own, so that
//! concurrent appends of one process share a transaction, its locks and its flush.
//!
//! An append is handed to the task and answered when its batch is done; a caller that
//! stops waiting does not cancel it (it may still commit, like any append whose caller
//! went away).

use crate::error::PostgresError;
use crate::sql::append::{append_batch, AppendSql, Request};
use cqrs_core::{Appended, StoreError};
use deadpool_postgres::Pool;
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};

/// The most appends one transaction takes.
const MAX_APPENDS: usize = 512;
/// The most events one transaction takes (a batch takes at least one append, however many
/// events it has).
const MAX_EVENTS: usize = 8_192;

struct Job {
    request: Request,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
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
        appended: Arc<watch::Sender<u64>>,
    ) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        runtime.spawn(run(queue, pool, sql, notify, appended));
        Self { jobs }
    }

    /// Appends through the task: the request's outcome, once its batch is done.
    pub(crate) async fn append(&self, request: Request) -> Result<Appended, StoreError> {
        let stream_id = request.stream_id.clone();
        let (reply, outcome) = oneshot::channel();
        self.jobs
            .send(Job { request, reply })
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

async fn run(
    mut queue: mpsc::UnboundedReceiver<Job>,
    pool: Pool,
    sql: Arc<AppendSql>,
    notify: bool,
    appended: Arc<watch::Sender<u64>>,
) {
    while let Some(first) = queue.recv().await {
        // Lets the callers already woken (those the last batch answered) queue their next
        // append before the batch is taken, so that they share its transaction.
        tokio::task::yield_now().await;
        let mut events = first.request.events.len();
        let mut batch = vec![first];
        while batch.len() < MAX_APPENDS && events < MAX_EVENTS {
            let Ok(job) = queue.try_recv() else { break };
            events += job.request.events.len();
            batch.push(job);
        }
        commit(batch, &pool, &sql, notify, &appended).await;
    }
}

/// Commits one batch and answers each of its appends.
async fn commit(
    batch: Vec<Job>,
    pool: &Pool,
    sql: &AppendSql,
    notify: bool,
    appended: &watch::Sender<u64>,
) {
    let (requests, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|job| {
            let stream_id = job.request.stream_id.clone();
            (job.request, (stream_id, job.reply))
        })
        .unzip();
    let client = match pool.get().await {
        Ok(client) => client,
        Err(error) => {
            let error = crate::error::pool_error(error);
            for (stream_id, reply) in replies {
                let _ = reply.send(Err(StoreError::Backend(
                    format!("no connection for the append to `{stream_id}`: {error}").into(),
                )));
            }
            return;
        }
    };
    match append_batch(&client, sql, notify, requests).await {
        Ok((outcomes, last)) => {
            // The signal moves before any caller hears back, so one that appended and then
            // looks at the signal finds its append there.
            if let Some(last) = last {
                advance(appended, last);
            }
            for ((_, reply), outcome) in replies.into_iter().zip(outcomes) {
                // A caller that stopped waiting needs no answer.
                let _ = reply.send(outcome);
            }
        }
        Err(failure) => {
            let errors = failure.into_errors(replies.iter().map(|(stream, _)| stream.as_str()));
            for ((_, reply), error) in replies.into_iter().zip(errors) {
                let _ = reply.send(Err(error));
            }
        }
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
