//! The read connections: a pool of read-only ones, apart from the writer's so that reads
//! never wait for a commit (WAL), and where a read runs: on the caller's thread, or on
//! tokio's blocking pool.
//!
//! Short reads run on the caller's thread: a WAL reader never waits for the writer, and
//! reading a few rows costs less than handing the work to another thread and back.

use crate::error::SqliteError;
use crate::panics::lock;
use crate::run::writer::Writer;
use cqrs_core::StoreError;
use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// Idle connections kept for reuse; more may be open while many reads run at once.
const MAX_IDLE: usize = 4;

/// Opens one more read connection (the pool does not know the file or its pragmas).
pub(crate) type OpenReader = Box<dyn Fn() -> Result<Connection, StoreError> + Send + Sync>;

/// The pool of read connections, and the writer whose connection short reads borrow.
pub(crate) struct Readers {
    writer: Writer,
    open: OpenReader,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// A pool that opens its connections with `open`, and opens the two a long page is
    /// read with at once, so that the first such read is not slowed by opening them.
    pub fn new(writer: Writer, open: OpenReader) -> Result<Self, StoreError> {
        let readers = Self {
            writer,
            open,
            idle: Mutex::new(Vec::new()),
        };
        let (first, second) = (readers.checkout()?, readers.checkout()?);
        readers.checkin(first);
        readers.checkin(second);
        Ok(readers)
    }

    /// Runs a short `read` (a few rows) on the caller's thread: on the writer's connection
    /// when it is idle (see [`Writer::read_if_idle`]), else on a pooled one.
    pub fn inline<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self.writer.read_if_idle(read) {
            Ok(result) => result,
            Err(read) => self.pooled(read),
        }
    }

    /// Runs `read` on a pooled connection on tokio's blocking pool, for reads too long to
    /// run on the async runtime.
    pub async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.spawn(read)
            .await
            .map_err(|e| SqliteError::ReadTask(e.to_string()))?
    }

    /// Starts `read` on a pooled connection on tokio's blocking pool, now: for a read the
    /// caller wants done while it works on something else.
    pub fn spawn<T, F>(self: &Arc<Self>, read: F) -> JoinHandle<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || readers.pooled(read))
    }

    /// Runs `read` on a pooled connection.
    fn pooled<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.checkout()?;
        let result = read(&conn);
        self.checkin(conn);
        result
    }

    fn checkout(&self) -> Result<Connection, StoreError> {
        let idle = lock(&self.idle).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => (self.open)(),
        }
    }

    fn checkin(&self, conn: Connection) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}
