//! Options for connecting a `PostgresStore`: where, in which schema, with how many
//! connections, and whether appends wake listeners with `NOTIFY`.

use std::time::Duration;

/// The schema a store uses when none is named.
pub const DEFAULT_SCHEMA: &str = "cqrs";

/// How a [`PostgresStore`](crate::PostgresStore) connects and runs.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    pub(crate) url: String,
    pub(crate) schema: String,
    pub(crate) pool_size: usize,
    pub(crate) notify: bool,
    pub(crate) poll_interval: Duration,
    pub(crate) connect_timeout: Duration,
}

impl PostgresOptions {
    /// Connects to `url` (`postgres://user:password@host:port/database`, or the key=value
    /// form libpq takes) with schema [`DEFAULT_SCHEMA`], a pool of 8 connections, `NOTIFY`
    /// on, a poll every second and a 10 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            pool_size: 8,
            notify: true,
            poll_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// The PostgreSQL schema holding the store's tables, so that many stores (and other
    /// applications) can share one database. Created on connect if missing. At most 63
    /// bytes, since PostgreSQL cuts longer names.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The most connections reads and appends hold at once (at least 2: appends take one
    /// while reads go on). The listener for `NOTIFY` has one more of its own.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(2);
        self
    }

    /// Whether each committed append sends a `NOTIFY` that wakes the stores of other
    /// processes at once. Off, they see new events at their next poll; `NOTIFY` takes a
    /// database-wide lock at commit, which a very write-heavy database may want to spare.
    pub fn notify(mut self, notify: bool) -> Self {
        self.notify = notify;
        self
    }

    /// How often the store reads the end of the log whatever `NOTIFY` says: the bound on
    /// how late [`appends`](cqrs_core::EventStore::appends) reports another process's write
    /// when a notification is lost (the listening connection dropped) or turned off.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long opening a connection may take before it fails.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}
