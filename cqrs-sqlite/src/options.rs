//! Options for opening a `SqliteStore`, as types rather than pragma strings.

use crate::synchronous::Synchronous;
use std::time::Duration;

/// How a [`SqliteStore`](crate::SqliteStore) opens and uses its file.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub(crate) synchronous: Synchronous,
    pub(crate) busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl SqliteOptions {
    /// `synchronous = NORMAL` and a 5 s busy timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// The durability level of each commit (see [`Synchronous`]).
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How long a write waits for another process's transaction before giving up with
    /// `StoreError::Busy`; processes sharing a file queue for the lock within this time.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }
}
