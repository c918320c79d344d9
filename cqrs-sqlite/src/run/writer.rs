//! The single writer: one connection, committing writes in groups.
//!
//! Writes (appends, snapshots) queue as jobs. The caller that finds the connection free
//! takes every job waiting and commits them in one transaction, each inside its own
//! savepoint (a job alone in its group needs none): each append is checked against its
//! own expected version, a refused one is rolled back alone, and the group pays for one
//! commit (one fsync under
//! `synchronous = FULL`). Callers hear back only after the commit.
//!
//! The commit runs on the thread of the caller that found the connection free (a
//! "combining" writer) instead of a writer thread of its own: handing each append to a
//! thread and the reply back costs two thread wake-ups, more than the SQLite work of an
//! uncontended append. A caller that finds the connection taken only queues its job and
//! waits; the thread holding the connection takes it in its next group before letting go.
//! So at most one thread at a time writes, and one async worker is held for the length
//! of a commit (its fsync under `synchronous = FULL`, or a busy wait for another process's
//! lock up to the busy timeout) while the other workers keep running.

use crate::error::{is_busy, SqliteError};
use crate::panics::{catch, lock, try_lock};
use cqrs_core::StoreError;
use rusqlite::Connection;
use std::sync::{Arc, Mutex};
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
            // A panicking job fails alone, like any failing job: unwinding out of the
            // committing caller would strand the jobs queued behind it.
            Some(work) => catch(|| work(conn)).unwrap_or_else(|panic| {
                Err(StoreError::Backend(
                    format!("a write job panicked, and was rolled back: {panic}").into(),
                ))
            }),
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

/// The writer's connection and the jobs waiting for it; clones share both.
#[derive(Clone)]
pub(crate) struct Writer {
    shared: Arc<Shared>,
}

struct Shared {
    /// Jobs not yet taken into a group.
    queue: Mutex<Vec<Box<dyn Job>>>,
    /// Held by the one thread committing a group.
    conn: Mutex<Connection>,
}

impl Writer {
    /// Takes the writer's connection; jobs are committed by the callers of [`Writer::run`].
    pub fn new(conn: Connection) -> Self {
        Self {
            shared: Arc::new(Shared {
                queue: Mutex::new(Vec::new()),
                conn: Mutex::new(conn),
            }),
        }
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
        lock(&self.shared.queue).push(Box::new(job));
        self.shared.serve();
        outcome.await.map_err(|_| SqliteError::WriterStopped)?
    }

    /// Runs `read` on the writer's connection if no group is being committed, and hands it
    /// back otherwise. That connection's page cache holds what it wrote last, where a
    /// reader's cache is thrown away after every commit of another connection: reading
    /// there saves re-reading those pages.
    pub fn read_if_idle<T, F: FnOnce(&Connection) -> T>(&self, read: F) -> Result<T, F> {
        let Some(conn) = try_lock(&self.shared.conn) else {
            return Err(read);
        };
        if !conn.is_autocommit() {
            // A transaction left open by a panic: the next group rolls it back first. The
            // lock was ours for a moment, so a job queued meanwhile is ours to commit.
            drop(conn);
            self.shared.serve();
            return Err(read);
        }
        let result = read(&conn);
        drop(conn);
        // A job queued meanwhile found the connection taken and left its commit to us.
        self.shared.serve();
        Ok(result)
    }
}

impl Shared {
    /// Commits the waiting jobs, a group at a time, until none is left; returns at once if
    /// another thread holds the connection (it checks the queue again after letting go, so
    /// no job is left behind).
    fn serve(&self) {
        loop {
            let Some(mut conn) = try_lock(&self.conn) else {
                return;
            };
            let mut group = {
                let mut queue = lock(&self.queue);
                let take = queue.len().min(MAX_GROUP);
                queue.drain(..take).collect::<Vec<_>>()
            };
            if !group.is_empty() {
                let committed = commit_group(&mut conn, &mut group);
                drop(conn);
                for job in group {
                    job.finish(committed.as_ref().map(|_| ()).map_err(group_failure));
                }
            } else {
                drop(conn);
            }
            // A job queued while this thread held the connection found it taken: serve it.
            if lock(&self.queue).is_empty() {
                return;
            }
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

/// Runs a transaction-control statement through the statement cache: rusqlite's
/// `Transaction` and `Savepoint` parse their SQL anew each time, and a group runs several
/// (BEGIN and COMMIT, a SAVEPOINT and a RELEASE per job).
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Runs every job in one IMMEDIATE transaction, each in its own savepoint, and commits.
fn commit_group(conn: &mut Connection, group: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    if !conn.is_autocommit() {
        // A panic left the previous group's transaction open: none of it was committed.
        conn.execute_batch("ROLLBACK")?;
    }
    control(conn, "BEGIN IMMEDIATE")?;
    let committed = run_and_commit(conn, group);
    if committed.is_err() && !conn.is_autocommit() {
        // Nothing of this group may stay; the error that stopped it is what callers see.
        let _ = conn.execute_batch("ROLLBACK");
    }
    committed
}

fn run_and_commit(conn: &Connection, group: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    if let [job] = group {
        // Alone in its group, a job needs no savepoint: if it fails, rolling back the
        // transaction undoes just its work, and SQLite journals no page for a savepoint.
        return if job.run(conn) {
            control(conn, "COMMIT")
        } else {
            control(conn, "ROLLBACK")
        };
    }
    for job in group.iter_mut() {
        control(conn, "SAVEPOINT job")?;
        if !job.run(conn) {
            // The job failed: undo what it did, and only that.
            control(conn, "ROLLBACK TO job")?;
        }
        control(conn, "RELEASE job")?;
    }
    control(conn, "COMMIT")
}
