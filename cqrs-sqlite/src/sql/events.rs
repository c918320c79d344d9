//! The event log: appending a stream's events, reading pages of it, and decoding its rows.

use crate::error::{is_duplicate_event_id, store_error};
use crate::integer::convert;
use crate::page::{Page, Range};
use chrono::{DateTime, Utc};
use cqrs_core::backend::decode_metadata;
use cqrs_core::{Appended, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, Row};
use uuid::Uuid;

/// Rows a read makes room for up front; a huge limit says "everything", not how much is
/// there.
const PREALLOCATED_ROWS: usize = 256;

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
const STREAM_FORWARD: &str =
    select_events!("WHERE stream_id = ?1 AND version >= ?2 ORDER BY version LIMIT ?3");
/// A stream's events up to a version, newest first.
const STREAM_BACKWARD: &str =
    select_events!("WHERE stream_id = ?1 AND version <= ?2 ORDER BY version DESC LIMIT ?3");
/// Every event from a position on, in global order.
const GLOBAL_FORWARD: &str = select_events!("WHERE position >= ?1 ORDER BY position LIMIT ?2");

/// The stream's current version (`None`: never written); appends are checked against it.
pub(crate) fn stream_version(
    conn: &Connection,
    stream_id: &str,
) -> Result<Option<u64>, StoreError> {
    let version: Option<i64> = conn
        .prepare_cached("SELECT MAX(version) FROM events WHERE stream_id = ?1")
        .and_then(|mut statement| statement.query_row([stream_id], |row| row.get(0)))
        .map_err(store_error)?;
    version
        .map(|version| {
            convert(version, "version").map_err(|e| StoreError::Corrupt {
                stream_id: stream_id.to_owned(),
                version: 0,
                position: None,
                reason: format!("its latest version: {e}"),
            })
        })
        .transpose()
}

/// Checks the expected version and inserts the events, inside the caller's savepoint.
pub(crate) fn append(
    conn: &Connection,
    stream_id: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    recorded_at: DateTime<Utc>,
) -> Result<Appended, StoreError> {
    let current = stream_version(conn, stream_id)?;
    expected.check(stream_id, current)?;
    let mut version = current.unwrap_or(0);
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, \
             payload, metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(store_error)?;
    let mut recorded = Vec::with_capacity(events.len());
    // The events of one command share their metadata: serialize it once per batch.
    let mut metadata: Option<(Metadata, String)> = None;
    for event in events {
        // Never overflows: `version` fitted an i64 when it was read or last stored.
        version += 1;
        let stored_version: i64 = convert(version, "version")?;
        let json = match metadata {
            Some((ref same, ref json)) if *same == event.metadata => json,
            _ => {
                let json = serde_json::to_string(&event.metadata)
                    .map_err(|e| StoreError::Backend(Box::new(e)))?;
                &metadata.insert((event.metadata.clone(), json)).1
            }
        };
        let inserted = statement.execute(params![
            stream_id,
            stored_version,
            event.event_id.as_bytes(),
            event.event_type,
            event.schema_version,
            event.payload,
            json,
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
        let position = convert(conn.last_insert_rowid(), "position")?;
        recorded.push(event.into_recorded(stream_id, version, position, recorded_at));
    }
    Ok(Appended {
        version,
        events: recorded,
    })
}

/// Reads and decodes the events of `page`, in the page's order.
pub(crate) fn select(conn: &Connection, page: &Page) -> Result<Vec<RecordedEvent>, StoreError> {
    // SQLite's integers are signed: a bound past the largest one means "no bound", as the
    // largest one does.
    let limit: i64 = convert(page.limit, "limit").unwrap_or(i64::MAX);
    let from: i64 = convert(page.range.from(), "from").unwrap_or(i64::MAX);
    let (sql, stream_id) = match &page.range {
        Range::StreamForward { stream_id, .. } => (STREAM_FORWARD, Some(stream_id)),
        Range::StreamBackward { stream_id, .. } => (STREAM_BACKWARD, Some(stream_id)),
        Range::Global { .. } => (GLOBAL_FORWARD, None),
    };
    let mut statement = conn.prepare_cached(sql).map_err(store_error)?;
    let rows = match stream_id {
        Some(stream_id) => statement.query(params![stream_id, from, limit]),
        None => statement.query(params![from, limit]),
    };
    let mut rows = rows.map_err(store_error)?;
    let mut events = Vec::with_capacity(page.limit.min(PREALLOCATED_ROWS));
    while let Some(row) = rows.next().map_err(store_error)? {
        events.push(recorded_event(row, stream_id.map(String::as_str))?);
    }
    Ok(events)
}

/// Decodes one row; a damaged envelope is a `Corrupt` error naming stream, version and
/// position (version 0 when the version itself is what is damaged, no position when the
/// position is).
///
/// Text columns are copied once, straight from SQLite's buffer into the event's `String`s;
/// metadata is parsed from that buffer without a copy. A stream read passes the stream id
/// it asked for (`known_stream`), saving a column read and its UTF-8 check per row.
fn recorded_event(row: &Row<'_>, known_stream: Option<&str>) -> Result<RecordedEvent, StoreError> {
    // The rowid, always an integer: read first, to name the row in every error.
    let stored_position: i64 = row.get(0).map_err(store_error)?;
    let position: Option<u64> = convert(stored_position, "position").ok();
    let stream_id: String = match known_stream {
        Some(stream_id) => stream_id.to_owned(),
        None => row.get(1).map_err(store_error)?,
    };
    let stored_version: i64 = row.get(2).map_err(store_error)?;
    let version = convert(stored_version, "version").map_err(|e| StoreError::Corrupt {
        stream_id: stream_id.clone(),
        version: 0,
        position,
        reason: e.to_string(),
    })?;
    let corrupt = |reason: String| StoreError::Corrupt {
        stream_id: stream_id.clone(),
        version,
        position,
        reason,
    };
    let bytes = |index: usize, name: &str| -> Result<&[u8], StoreError> {
        match row.get_ref(index).map_err(store_error)? {
            ValueRef::Text(bytes) => Ok(bytes),
            other => Err(corrupt(format!(
                "{name} is {:?}, not text",
                other.data_type()
            ))),
        }
    };
    let text = |index: usize, name: &str| -> Result<String, StoreError> {
        let bytes = bytes(index, name)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| corrupt(format!("{name} is not UTF-8: {e}")))
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
    let metadata = decode_metadata(bytes(7, "metadata")?)
        .map_err(|e| corrupt(format!("metadata is not valid: {e}")))?;
    let micros: i64 = row
        .get(8)
        .map_err(|e| corrupt(format!("recorded_at: {e}")))?;
    let recorded_at = DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| corrupt(format!("recorded_at {micros} is out of range")))?;
    let position =
        position.ok_or_else(|| corrupt(format!("position {stored_position} is out of range")))?;
    Ok(RecordedEvent {
        stream_id,
        version,
        position,
        event_id,
        event_type,
        schema_version,
        payload,
        metadata,
        recorded_at,
    })
}
