//! Errors particular to SQLite, and how rusqlite's errors become the store contract's.

use cqrs_core::StoreError;
use rusqlite::ErrorCode;

/// Failures only the SQLite backend has; they reach callers inside `StoreError::Backend`.
/// More variants may come with new backends and checks, so matches need a `_` arm.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// The file was written by a newer version of this crate.
    #[error("database schema version {found} is newer than the {supported} this version supports")]
    SchemaTooNew {
        /// `PRAGMA user_version` of the file.
        found: u32,
        /// The newest schema version this crate knows.
        supported: u32,
    },
    /// The file is an SQLite database, but not one of this framework's: another
    /// application's, or one whose schema was changed by hand. It was left as it was.
    #[error("not an event store file: {reason}")]
    ForeignFile {
        /// What gave it away.
        reason: String,
    },
    /// The file is not an intact SQLite database: not one at all, cut short, or damaged.
    #[error("the file is not an intact SQLite database: {reason}")]
    Malformed {
        /// What SQLite reported.
        reason: String,
    },
    /// The write was dropped before its group committed: another job of the group
    /// panicked on the thread committing it (nothing of that group was committed).
    #[error("the store's writer stopped before this write committed")]
    WriterStopped,
    /// A blocking read task could not be run.
    #[error("a read task failed: {0}")]
    ReadTask(String),
    /// An integer that does not fit the type it must become: read from the file, a sign of
    /// damage or of another writer than this crate; on its way in, a value SQLite's signed
    /// 64-bit integers cannot hold.
    #[error("{what} {value} is out of range for its type")]
    OutOfRange {
        /// What the integer is (a version, a position, ...).
        what: &'static str,
        /// The integer as it was found.
        value: String,
    },
    /// A row of the parked events cannot be read: damaged, or written by something other
    /// than this crate.
    #[error("the event subscription `{subscription}` parked at position {position} is unreadable: {reason}")]
    ParkedUnreadable {
        /// The subscription whose entry it is.
        subscription: String,
        /// Its position, as found.
        position: String,
        /// What could not be read.
        reason: String,
    },
}

impl From<SqliteError> for StoreError {
    fn from(error: SqliteError) -> Self {
        StoreError::Backend(Box::new(error))
    }
}

/// Maps a rusqlite error: lock timeouts become `StoreError::Busy`, a damaged or foreign
/// file [`SqliteError::Malformed`], the rest `Backend`.
pub(crate) fn store_error(error: rusqlite::Error) -> StoreError {
    if is_busy(&error) {
        StoreError::Busy {
            reason: error.to_string(),
        }
    } else if is_malformed(&error) {
        SqliteError::Malformed {
            reason: error.to_string(),
        }
        .into()
    } else {
        StoreError::Backend(Box::new(error))
    }
}

/// Whether SQLite found the file is not a database, or a damaged one.
fn is_malformed(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

/// Whether the error is another connection holding the lock past the busy timeout.
pub(crate) fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Whether an insert failed on `UNIQUE(event_id)`.
pub(crate) fn is_duplicate_event_id(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, Some(message))
            if failure.code == ErrorCode::ConstraintViolation && message.contains("events.event_id")
    )
}
