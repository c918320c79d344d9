//! The event log: appending a stream's events, reading pages of it, and decoding its rows.

use crate::error::{is_duplicate_event_id, store_error, SqliteError};
use crate::integer::{convert, lower_bound, upper_bound};
use crate::page::{Page, Range};
use chrono::{DateTime, Utc};
use cqrs_core::backend::decode_metadata;
use cqrs_core::{Appended, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, ErrorCode, Row};
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
/// A stream's events from its first on, oldest first: with no bound on the version, so
/// that one that is NULL, zero or negative (which sort first) is read, and refused.
const STREAM_FROM_START: &str = select_events!("WHERE stream_id = ?1 ORDER BY version LIMIT ?2");
/// A stream's events up to a version, newest first.
const STREAM_BACKWARD: &str =
    select_events!("WHERE stream_id = ?1 AND version <= ?2 ORDER BY version DESC LIMIT ?3");
/// Every event from a position on, in global order.
const GLOBAL_FORWARD: &str = select_events!("WHERE position >= ?1 ORDER BY position LIMIT ?2");

/// The stream's row with the highest version, by SQLite's order (text and blobs after
/// every number): its current version, if that reads as one.
const STREAM_LAST: &str =
    "SELECT version, position FROM events WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1";

/// What a stream read cannot see for itself, in one row, one index seek each, the first
/// two only when asked (`?2`, `?3`): whether the stream's lowest version by SQLite's order
/// is a valid one (NULL, zero and negatives sort first; NULL: no event, or not asked), its
/// highest (text and blobs sort after every number), and whether an event has the
/// stream's id stored as a blob (which `stream_id = ?1` never matches).
const STREAM_ENDS: &str = "\
    SELECT CASE WHEN ?2 THEN (SELECT typeof(version) = 'integer' AND version >= 1 \
                FROM events WHERE stream_id = ?1 ORDER BY version LIMIT 1) END, \
           CASE WHEN ?3 THEN (SELECT version FROM events \
                WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1) END, \
           EXISTS (SELECT 1 FROM events WHERE stream_id = CAST(?1 AS BLOB))";

/// The first row placed before every valid position, where a global read never looks.
const MISPLACED: &str = select_events!("WHERE position < 1 ORDER BY position LIMIT 1");

/// The rows [`STREAM_ENDS`] looked at, to name the damaged one: the lowest, the highest,
/// and one whose stream id is a blob, tagged 0, 1 and 2.
const STREAM_ENDS_ROWS: &str = "\
    SELECT 0, version, position FROM (SELECT version, position FROM events \
        WHERE stream_id = ?1 ORDER BY version LIMIT 1) \
    UNION ALL SELECT 1, version, position FROM (SELECT version, position FROM events \
        WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1) \
    UNION ALL SELECT 2, version, position FROM (SELECT version, position FROM events \
        WHERE stream_id = CAST(?1 AS BLOB) LIMIT 1)";

/// The stream's current version (`None`: never written); appends are checked against it.
/// A highest version that is not a valid one is `Corrupt`.
pub(crate) fn stream_version(
    conn: &Connection,
    stream_id: &str,
) -> Result<Option<u64>, StoreError> {
    let mut statement = conn.prepare_cached(STREAM_LAST).map_err(store_error)?;
    let mut rows = statement.query([stream_id]).map_err(store_error)?;
    match rows.next().map_err(store_error)? {
        None => Ok(None),
        Some(row) => {
            let (version, position) = (column(row, 0)?, column(row, 1)?);
            valid_version(stream_id, version, position).map(Some)
        }
    }
}

/// What a stream read must check besides the rows it reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ends {
    /// The stream's lowest version: for a read that starts past it (a read from the start
    /// reads it, and refuses it if it is not valid).
    pub first: bool,
    /// The stream's highest version, which it returns: for a backward read, which cannot
    /// see one stored as text or a blob, and whose own check needs it.
    pub last: bool,
}

/// Checks what a stream read cannot see for itself, before it runs: that the stream's
/// lowest and highest versions are valid ones, as `ends` asks (so that none is NULL, out
/// of range or of another type: those sort first or last), and that none of its events
/// has its stream id stored as a blob. Returns the stream's current version when asked
/// for it (`None`: never written, or not asked), for the read's own check
/// ([`Page::check_versions`]).
pub(crate) fn stream_ends(
    conn: &Connection,
    stream_id: &str,
    ends: Ends,
) -> Result<Option<u64>, StoreError> {
    let mut statement = conn.prepare_cached(STREAM_ENDS).map_err(store_error)?;
    let mut rows = statement
        .query(params![stream_id, ends.first, ends.last])
        .map_err(store_error)?;
    let Some(row) = rows.next().map_err(store_error)? else {
        return Ok(None); // one row always comes back
    };
    let first_valid = !matches!(column(row, 0)?, ValueRef::Integer(0));
    let last = match column(row, 1)? {
        ValueRef::Null => Ok(None),
        value => read_version(value).map(Some),
    };
    let blob_id = matches!(column(row, 2)?, ValueRef::Integer(1));
    match last {
        Ok(last) if first_valid && !blob_id => Ok(last),
        _ => Err(damaged_end(conn, stream_id)),
    }
}

/// Checks that no row sits before the first valid position, where every global read
/// starts: such a row would be missing from the log without a trace.
pub(crate) fn check_positions(conn: &Connection) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(MISPLACED).map_err(store_error)?;
    let mut rows = statement.query([]).map_err(store_error)?;
    match rows.next().map_err(store_error)? {
        None => Ok(()),
        // `identify` refuses the row's position; the rest of it does not matter.
        Some(row) => identify(row, None).map(drop),
    }
}

/// The `Corrupt` error for the row [`stream_ends`] found damaged, naming its version and
/// position as far as they can be read.
fn damaged_end(conn: &Connection, stream_id: &str) -> StoreError {
    let found = || -> Result<StoreError, StoreError> {
        let mut statement = conn.prepare_cached(STREAM_ENDS_ROWS).map_err(store_error)?;
        let mut rows = statement.query([stream_id]).map_err(store_error)?;
        while let Some(row) = rows.next().map_err(store_error)? {
            let tag: i64 = row.get(0).map_err(store_error)?;
            let (version, position) = (column(row, 1)?, column(row, 2)?);
            if tag == 2 {
                return Ok(StoreError::Corrupt {
                    stream_id: stream_id.to_owned(),
                    version: read_version(version).unwrap_or(0),
                    position: read_position(position).ok(),
                    reason: "stream_id is stored as a blob, not text, so reads of its stream \
                             cannot find the event"
                        .to_owned(),
                });
            }
            if let Err(error) = valid_version(stream_id, version, position) {
                return Ok(error);
            }
        }
        Ok(StoreError::Corrupt {
            stream_id: stream_id.to_owned(),
            version: 0,
            position: None,
            reason: "the stream's versions changed while they were checked".to_owned(),
        })
    };
    found().unwrap_or_else(|error| error)
}

/// Whether the log has used the largest position SQLite can hold (with `AUTOINCREMENT`,
/// later inserts fail with SQLITE_FULL instead of reusing one).
fn positions_exhausted(conn: &Connection) -> bool {
    conn.prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
        .and_then(|mut statement| statement.query_row([], |row| row.get::<_, i64>(0)))
        .is_ok_and(|seq| seq == i64::MAX)
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
            Err(error)
                if error.sqlite_error_code() == Some(ErrorCode::DiskFull)
                    && positions_exhausted(conn) =>
            {
                return Err(SqliteError::OutOfRange {
                    what: "next position",
                    value: (i128::from(i64::MAX) + 1).to_string(),
                }
                .into())
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
    let limit = upper_bound(page.limit);
    // The query, and its bound on version or position (`None`: a stream from its start).
    let (sql, stream_id, from) = match &page.range {
        Range::StreamForward { stream_id, from } if *from <= 1 => {
            (STREAM_FROM_START, Some(stream_id), None)
        }
        Range::StreamForward { stream_id, from } => {
            (STREAM_FORWARD, Some(stream_id), Some(lower_bound(*from)))
        }
        Range::StreamBackward { stream_id, from } => (
            STREAM_BACKWARD,
            Some(stream_id),
            Some(Some(upper_bound(*from))),
        ),
        Range::Global { from } => (GLOBAL_FORWARD, None, Some(lower_bound(*from))),
    };
    let mut statement = conn.prepare_cached(sql).map_err(store_error)?;
    let rows = match (stream_id, from) {
        (_, Some(None)) => return Ok(Vec::new()), // starts past every value SQLite holds
        (Some(stream_id), Some(Some(from))) => statement.query(params![stream_id, from, limit]),
        (Some(stream_id), None) => statement.query(params![stream_id, limit]),
        (None, from) => statement.query(params![from.flatten(), limit]),
    };
    let mut rows = rows.map_err(store_error)?;
    let mut events = Vec::with_capacity(page.limit.min(PREALLOCATED_ROWS));
    while let Some(row) = rows.next().map_err(store_error)? {
        events.push(recorded_event(row, stream_id.map(String::as_str))?);
    }
    Ok(events)
}

/// Which event a row holds: its stream id, version and position, all of them valid.
struct Identity {
    stream_id: String,
    version: u64,
    position: u64,
}

impl Identity {
    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            stream_id: self.stream_id.clone(),
            version: self.version,
            position: Some(self.position),
            reason,
        }
    }
}

/// Reads the row's position, stream id and version; if one of them is damaged, `Corrupt`
/// names the others as far as they can be read (an empty stream id, version 0 and no
/// position where they cannot: none of them is a valid one). A stream read passes the
/// stream id it asked for (`known_stream`), saving a column read per row.
fn identify(row: &Row<'_>, known_stream: Option<&str>) -> Result<Identity, StoreError> {
    let position = read_position(column(row, 0)?);
    let stream_id = match known_stream {
        Some(stream_id) => Ok(stream_id.to_owned()),
        None => read_stream_id(column(row, 1)?),
    };
    let version = read_version(column(row, 2)?);
    match (position, stream_id, version) {
        (Ok(position), Ok(stream_id), Ok(version)) => Ok(Identity {
            stream_id,
            version,
            position,
        }),
        (position, stream_id, version) => {
            let (stream_id, stream_problem) = match stream_id {
                Ok(stream_id) => (stream_id, None),
                Err((readable, problem)) => (readable, Some(problem)),
            };
            let reason = [
                position.as_ref().err(),
                stream_problem.as_ref(),
                version.as_ref().err(),
            ]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
            Err(StoreError::Corrupt {
                stream_id,
                version: version.unwrap_or(0),
                position: position.ok(),
                reason,
            })
        }
    }
}

/// One column of the row, as SQLite holds it.
fn column<'row>(row: &'row Row<'_>, index: usize) -> Result<ValueRef<'row>, StoreError> {
    row.get_ref(index).map_err(store_error)
}

/// A version as stored, if it is one: an integer from 1 on.
fn read_version(value: ValueRef<'_>) -> Result<u64, String> {
    match value {
        ValueRef::Integer(version) if version >= 1 => {
            convert(version, "version").map_err(|e| e.to_string())
        }
        ValueRef::Integer(version) => Err(format!(
            "version {version} is out of range: versions start at 1"
        )),
        other => Err(format!("version is {}, not an integer", describe(other))),
    }
}

/// A position as stored, if it is one: an integer from 1 on.
fn read_position(value: ValueRef<'_>) -> Result<u64, String> {
    match value {
        ValueRef::Integer(position) if position >= 1 => {
            convert(position, "position").map_err(|e| e.to_string())
        }
        ValueRef::Integer(position) => Err(format!(
            "position {position} is out of range: positions start at 1"
        )),
        other => Err(format!("position is {}, not an integer", describe(other))),
    }
}

/// A stream id as stored, if it is one (text); else what can be read of it, and why it is
/// not one.
fn read_stream_id(value: ValueRef<'_>) -> Result<String, (String, String)> {
    match value {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).map(str::to_owned).map_err(|e| {
            (
                String::from_utf8_lossy(bytes).into_owned(),
                format!("stream_id is not UTF-8: {e}"),
            )
        }),
        ValueRef::Blob(bytes) => Err((
            String::from_utf8_lossy(bytes).into_owned(),
            "stream_id is stored as a blob, not text".to_owned(),
        )),
        other => Err((
            String::new(),
            format!("stream_id is {}, not text", describe(other)),
        )),
    }
}

/// A stream's version read by [`stream_version`] or [`stream_ends`], or `Corrupt`.
fn valid_version(
    stream_id: &str,
    version: ValueRef<'_>,
    position: ValueRef<'_>,
) -> Result<u64, StoreError> {
    read_version(version).map_err(|reason| StoreError::Corrupt {
        stream_id: stream_id.to_owned(),
        version: 0,
        position: read_position(position).ok(),
        reason,
    })
}

/// A stored value in words, for errors: its type, and the value when it is short.
fn describe(value: ValueRef<'_>) -> String {
    const SHOWN: usize = 40;
    match value {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(n) => format!("the integer {n}"),
        ValueRef::Real(x) => format!("the real number {x}"),
        ValueRef::Text(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            match text.char_indices().nth(SHOWN) {
                None => format!("the text {text:?}"),
                Some((cut, _)) => format!("the text {:?}...", &text[..cut]),
            }
        }
        ValueRef::Blob(bytes) => format!("a blob of {} bytes", bytes.len()),
    }
}

/// Decodes one row; a damaged envelope is a `Corrupt` error naming stream, version and
/// position as far as they can be read, and what is wrong.
///
/// Text columns are copied once, straight from SQLite's buffer into the event's `String`s;
/// metadata is parsed from that buffer without a copy.
fn recorded_event(row: &Row<'_>, known_stream: Option<&str>) -> Result<RecordedEvent, StoreError> {
    let identity = identify(row, known_stream)?;
    let corrupt = |reason: String| identity.corrupt(reason);
    let bytes = |index: usize, name: &str| -> Result<&[u8], StoreError> {
        match column(row, index)? {
            ValueRef::Text(bytes) => Ok(bytes),
            other => Err(corrupt(format!("{name} is {}, not text", describe(other)))),
        }
    };
    let text = |index: usize, name: &str| -> Result<String, StoreError> {
        let bytes = bytes(index, name)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| corrupt(format!("{name} is not UTF-8: {e}")))
    };
    let integer = |index: usize, name: &str| -> Result<i64, StoreError> {
        match column(row, index)? {
            ValueRef::Integer(n) => Ok(n),
            other => Err(corrupt(format!(
                "{name} is {}, not an integer",
                describe(other)
            ))),
        }
    };
    let event_id = match column(row, 3)? {
        ValueRef::Blob(bytes) => Uuid::from_slice(bytes).map_err(|_| {
            corrupt(format!(
                "event_id is a blob of {} bytes, not a 16-byte UUID",
                bytes.len()
            ))
        })?,
        other => {
            return Err(corrupt(format!(
                "event_id is {}, not a 16-byte blob",
                describe(other)
            )))
        }
    };
    let event_type = text(4, "event_type")?;
    let schema_version = convert(integer(5, "schema_version")?, "schema_version")
        .map_err(|e| corrupt(e.to_string()))?;
    let payload = text(6, "payload")?;
    let metadata = decode_metadata(bytes(7, "metadata")?)
        .map_err(|e| corrupt(format!("metadata is not valid: {e}")))?;
    let micros = integer(8, "recorded_at")?;
    let recorded_at = DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| corrupt(format!("recorded_at {micros} is out of range")))?;
    Ok(RecordedEvent {
        stream_id: identity.stream_id,
        version: identity.version,
        position: identity.position,
        event_id,
        event_type,
        schema_version,
        payload,
        metadata,
        recorded_at,
    })
}
