//! Errors particular to PostgreSQL, and how the driver's errors become the store contract's.

use cqrs_core::StoreError;
use tokio_postgres::error::SqlState;

/// Failures only the PostgreSQL backend has; they reach callers inside
/// `StoreError::Backend`. More variants may come, so matches need a `_` arm.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The connection URL cannot be read.
    #[error("invalid PostgreSQL URL: {reason}")]
    InvalidUrl {
        /// What the driver found wrong with it.
        reason: String,
    },
    /// No connection could be made to the server the URL names.
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Connect {
        /// Host, port and database, without the password.
        target: String,
        /// What the driver or the server reported.
        reason: String,
    },
    /// The schema name cannot be used.
    #[error("invalid schema name {name:?}: {reason}")]
    InvalidSchemaName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The schema was written by a newer version of this crate; it was left as it was.
    #[error(
        "schema `{schema}` is at version {found}, newer than the {supported} this version supports"
    )]
    SchemaTooNew {
        /// The schema.
        schema: String,
        /// The version recorded in it.
        found: i64,
        /// The newest version this crate knows.
        supported: i64,
    },
    /// The schema holds tables, but not this framework's; it was left as it was.
    #[error("schema `{schema}` is not an event store's: {reason}")]
    ForeignSchema {
        /// The schema.
        schema: String,
        /// What gave it away.
        reason: String,
    },
    /// The connection broke while the append's commit was on its way: it may or may not
    /// have been stored. Appending the same events again is safe: if they were stored, the
    /// retry is refused with `StoreError::DuplicateEventId` and nothing is stored twice.
    #[error("the outcome of the append to stream `{stream_id}` is unknown: {reason}")]
    OutcomeUnknown {
        /// The stream appended to.
        stream_id: String,
        /// What broke.
        reason: String,
    },
    /// The connection to the server broke (closed, or its backend terminated) before the
    /// statement completed, or none could be made (the server is down or restarting): a
    /// read can be made again; an append was not stored (when its outcome is unknown,
    /// [`PostgresError::OutcomeUnknown`] is reported instead). The pool replaces the
    /// connection once the server is back.
    #[error("the connection to PostgreSQL was lost: {reason}")]
    ConnectionLost {
        /// What the driver or the server reported.
        reason: String,
    },
    /// The store's appender task is gone (its runtime shut down): nothing was appended.
    #[error("the store's appender stopped; nothing was appended")]
    AppenderStopped,
    /// The server refused a statement.
    #[error("PostgreSQL refused a statement: {message} (SQLSTATE {code})")]
    Server {
        /// The SQLSTATE code, e.g. `23505` for a unique violation.
        code: String,
        /// The server's message, with its detail when it gave one.
        message: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A value that PostgreSQL cannot store as given.
    #[error("{what} cannot be stored: {reason}")]
    Unstorable {
        /// What the value is (an event type, a payload, a position, ...).
        what: String,
        /// Why.
        reason: String,
    },
}

impl From<PostgresError> for StoreError {
    fn from(error: PostgresError) -> Self {
        StoreError::Backend(Box::new(error))
    }
}

/// Whether the server ended the session with this error (its backend terminated, the
/// server shutting down): the connection is gone.
pub(crate) fn is_fatal(error: &tokio_postgres::error::DbError) -> bool {
    matches!(error.severity(), "FATAL" | "PANIC")
}

/// Maps a driver error: a lock or statement timeout becomes `StoreError::Busy`, a broken
/// connection [`PostgresError::ConnectionLost`], the rest `Backend` with the driver's error
/// (which names the server's message and SQL state).
pub(crate) fn store_error(error: tokio_postgres::Error) -> StoreError {
    let lost = match error.as_db_error() {
        Some(db) => is_fatal(db),
        None => error.is_closed() || is_io(&error),
    };
    if lost {
        return PostgresError::ConnectionLost {
            reason: error.to_string(),
        }
        .into();
    }
    let busy = error.code().is_some_and(|code| {
        *code == SqlState::LOCK_NOT_AVAILABLE || *code == SqlState::QUERY_CANCELED
    });
    let server = error.as_db_error().map(|db| {
        let message = match db.detail() {
            Some(detail) => format!("{}: {detail}", db.message()),
            None => db.message().to_owned(),
        };
        (db.code().code().to_owned(), message)
    });
    match server {
        Some((_, message)) if busy => StoreError::Busy { reason: message },
        Some((code, message)) => PostgresError::Server {
            code,
            message,
            source: error,
        }
        .into(),
        None if busy => StoreError::Busy {
            reason: error.to_string(),
        },
        None => StoreError::Backend(Box::new(error)),
    }
}

/// Maps a failure to take a connection from the pool.
pub(crate) fn pool_error(error: deadpool_postgres::PoolError) -> StoreError {
    match error {
        deadpool_postgres::PoolError::Backend(error) => store_error(error),
        deadpool_postgres::PoolError::Timeout(_) => StoreError::Busy {
            reason: "no pooled PostgreSQL connection became free in time".to_owned(),
        },
        other => StoreError::Backend(Box::new(other)),
    }
}

/// Whether the driver's error came from the connection's socket.
fn is_io(error: &tokio_postgres::Error) -> bool {
    std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
}
