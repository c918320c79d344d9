//! Reads: a pool of read-only connections used from the blocking thread pool, and row decoding.

use crate::error::{store_error, SqliteError};
use crate::options::SqliteOptions;
use crate::schema::connect;
use chrono::DateTime;
use cqrs_core::{Metadata, RecordedEvent, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use uuid::Uuid;

/// Idle connections kept for reuse; more may be open while many reads run at once.
const MAX_IDLE: usize = 4;

/// Connections for reads, apart from the writer's so reads never wait for a commit (WAL).
pub(crate) struct Readers {
    path: PathBuf,
    options: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub fn new(path: PathBuf, options: SqliteOptions) -> Self {
        Self {
            path,
            options,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on a pooled connection on tokio's blocking pool, so SQLite never blocks
    /// the async runtime.
    pub async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = readers.checkout()?;
            let result = read(&conn);
            readers.checkin(conn);
            result
        })
        .await
        .map_err(|e| SqliteError::ReadTask(e.to_string()))?
    }

    fn checkout(&self) -> Result<Connection, StoreError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = connect(&self.path, &self.options)?;
                conn.pragma_update(None, "query_only", true)
                    .map_err(store_error)?;
                Ok(conn)
            }
        }
    }

    fn checkin(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}

/// Selects the columns [`recorded_event`] expects, in order; the read queries extend it.
macro_rules! select_events {
    ($rest:literal) => {
        concat!(
            "SELECT position, stream_id, version, event_id, event_type, schema_version, \
             payload, metadata, recorded_at FROM events ",
            $rest
        )
    };
}

/// A stream's events from a version on, oldest first.
pub(crate) const STREAM_FORWARD: &str =
    select_events!("WHERE stream_id = ?1 AND version >= ?2 ORDER BY version LIMIT ?3");
/// A stream's events up to a version, newest first.
pub(crate) const STREAM_BACKWARD: &str =
    select_events!("WHERE stream_id = ?1 AND version <= ?2 ORDER BY version DESC LIMIT ?3");
/// Every event from a position on, in global order.
pub(crate) const GLOBAL_FORWARD: &str =
    select_events!("WHERE position >= ?1 ORDER BY position LIMIT ?2");

/// The stream's current version (`None`: never written); the writer checks appends with it.
pub(crate) fn stream_version(
    conn: &Connection,
    stream_id: &str,
) -> Result<Option<u64>, StoreError> {
    let version: Option<i64> = conn
        .prepare_cached("SELECT MAX(version) FROM events WHERE stream_id = ?1")
        .and_then(|mut statement| statement.query_row([stream_id], |row| row.get(0)))
        .map_err(store_error)?;
    Ok(version.map(|v| v as u64))
}

/// Runs one of the queries above and decodes every row.
pub(crate) fn query_events(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(store_error)?;
    let mut rows = statement.query(params).map_err(store_error)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(store_error)? {
        events.push(recorded_event(row)?);
    }
    Ok(events)
}

/// Decodes one row; a damaged envelope is a `Corrupt` error naming stream and version.
fn recorded_event(row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
    let stream_id: String = row.get(1).map_err(store_error)?;
    let version: i64 = row.get(2).map_err(store_error)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        stream_id: stream_id.clone(),
        version: version as u64,
        reason,
    };
    let text = |index: usize, name: &str| -> Result<String, StoreError> {
        match row.get_ref(index).map_err(store_error)? {
            ValueRef::Text(bytes) => String::from_utf8(bytes.to_vec())
                .map_err(|e| corrupt(format!("{name} is not UTF-8: {e}"))),
            other => Err(corrupt(format!(
                "{name} is {:?}, not text",
                other.data_type()
            ))),
        }
    };
    let event_id = match row.get_ref(3).map_err(store_error)? {
        ValueRef::Blob(bytes) => {
            Uuid::from_slice(bytes).map_err(|e| corrupt(format!("event_id is not a UUID: {e}")))?
        }
        other => {
            return Err(corrupt(format!(
                "event_id is {:?}, not a blob",
                other.data_type()
            )))
        }
    };
    let event_type = text(4, "event_type")?;
    let schema_version: u32 = row
        .get(5)
        .map_err(|e| corrupt(format!("schema_version: {e}")))?;
    let payload = text(6, "payload")?;
    let metadata: Metadata = serde_json::from_str(&text(7, "metadata")?)
        .map_err(|e| corrupt(format!("metadata is not valid: {e}")))?;
    let micros: i64 = row
        .get(8)
        .map_err(|e| corrupt(format!("recorded_at: {e}")))?;
    let recorded_at = DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| corrupt(format!("recorded_at {micros} is out of range")))?;
    let position: i64 = row.get(0).map_err(store_error)?;
    Ok(RecordedEvent {
        stream_id,
        version: version as u64,
        position: position as u64,
        event_id,
        event_type,
        schema_version,
        payload,
        metadata,
        recorded_at,
    })
}
