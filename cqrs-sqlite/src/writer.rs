//! The single writer: one connection on its own thread, committing writes in groups.
//!
//! Writes (appends, snapshots) queue on a channel as jobs. The thread takes every job
//! waiting when it becomes free and commits them in one transaction, each inside its own
//! savepoint: each append is checked against its own expected version, a refused one is
//! rolled back alone, and the group pays for one commit (one fsync under
//! `synchronous = FULL`). Callers hear back only after the commit.

use crate::error::{is_busy, is_duplicate_event_id, store_error, SqliteError};
use crate::reader::stream_version;
use chrono::{DateTime, Utc};
use cqrs_core::envelope::recorded_now;
use cqrs_core::{Appended, ExpectedVersion, NewEvent, StoreError};
use rusqlite::{params, Connection, TransactionBehavior};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Jobs committed together at most; bounds the latency one group adds to its last member.
const MAX_GROUP: usize = 256;

/// A unit of work for the writer: runs inside its own savepoint, then learns whether the
/// group's transaction committed.
trait Job: Send {
    /// Does the work; `false` means it failed and its savepoint must be rolled back.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Sends the outcome, once the transaction committed (or failed to).
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

struct Work<R, F> {
    work: Option<F>,
    outcome: Option<Result<R, StoreError>>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<R, F> Job for Work<R, F>
where
    R: Send,
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let outcome = match self.work.take() {
            Some(work) => work(conn),
            None => Err(SqliteError::WriterStopped.into()),
        };
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        let outcome = match (self.outcome, committed) {
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(failure)) => Err(failure),
            (Some(Err(refusal)), _) => Err(refusal),
            (None, Err(failure)) => Err(failure),
            (None, Ok(())) => Err(SqliteError::WriterStopped.into()),
        };
        // The caller may have stopped waiting; what committed stays committed.
        let _ = self.reply.send(outcome);
    }
}

/// The sending side of the writer thread; dropping every clone stops the thread.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Moves the connection onto a new thread that serves jobs until the store is dropped.
    pub fn start(conn: Connection) -> Result<Self, StoreError> {
        let (queue, jobs) = mpsc::channel();
        std::thread::Builder::new()
            .name("cqrs-sqlite-writer".to_owned())
            .spawn(move || serve(conn, jobs))
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(Self { queue })
    }

    /// Runs `work` in the next group transaction, in a savepoint of its own (rolled back
    /// alone if it fails), and returns its result once the transaction has committed.
    pub async fn run<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        let job = Work {
            work: Some(work),
            outcome: None,
            reply,
        };
        self.queue
            .send(Box::new(job))
            .map_err(|_| SqliteError::WriterStopped)?;
        outcome.await.map_err(|_| SqliteError::WriterStopped)?
    }

    /// Appends events to a stream (see [`insert`]).
    pub async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        let stream_id = stream_id.to_owned();
        self.run(move |conn| insert(conn, &stream_id, expected, events, recorded_now()))
            .await
    }
}

fn serve(mut conn: Connection, jobs: mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let committed = commit_group(&mut conn, &mut group);
        for job in group {
            job.finish(committed.as_ref().map(|_| ()).map_err(group_failure));
        }
    }
}

/// The same failure for every member of a group (rusqlite errors cannot be cloned).
fn group_failure(error: &rusqlite::Error) -> StoreError {
    if is_busy(error) {
        StoreError::Busy {
            reason: error.to_string(),
        }
    } else {
        StoreError::Backend(format!("commit failed: {error}").into())
    }
}

/// Runs every job in one IMMEDIATE transaction, each in its own savepoint, and commits.
fn commit_group(conn: &mut Connection, group: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in group.iter_mut() {
        let savepoint = tx.savepoint()?;
        if job.run(&savepoint) {
            savepoint.commit()?;
        }
        // Dropping an uncommitted savepoint rolls this job back alone.
    }
    tx.commit()
}

/// Checks the expected version and inserts the events, inside the caller's savepoint.
pub(crate) fn insert(
    conn: &Connection,
    stream_id: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    recorded_at: DateTime<Utc>,
) -> Result<Appended, StoreError> {
    let current = stream_version(conn, stream_id)?;
    expected.check(stream_id, current)?;
    let version = current.unwrap_or(0);
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, \
             payload, metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(store_error)?;
    let mut recorded = Vec::with_capacity(events.len());
    for (offset, event) in events.into_iter().enumerate() {
        let event_version = version + offset as u64 + 1;
        let metadata =
            serde_json::to_string(&event.metadata).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let inserted = statement.execute(params![
            stream_id,
            event_version as i64,
            event.event_id.as_bytes(),
            event.event_type,
            event.schema_version,
            event.payload,
            metadata,
            recorded_at.timestamp_micros(),
        ]);
        match inserted {
            Ok(_) => {}
            Err(error) if is_duplicate_event_id(&error) => {
                return Err(StoreError::DuplicateEventId {
                    stream_id: stream_id.to_owned(),
                    event_id: event.event_id,
                })
            }
            Err(error) => return Err(store_error(error)),
        }
        let position = conn.last_insert_rowid() as u64;
        recorded.push(event.into_recorded(stream_id, event_version, position, recorded_at));
    }
    Ok(Appended {
        version: version + recorded.len() as u64,
        events: recorded,
    })
}
