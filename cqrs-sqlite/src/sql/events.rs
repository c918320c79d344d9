//! The event log: appending a stream's events, reading pages of it (whole streams, the
//! global log filtered and in either direction), finding events by id and by time, and
//! decoding its rows.

use crate::buffer::EventBuffer;
use crate::error::{is_duplicate_event_id, store_error, SqliteError};
use crate::integer::{convert, lower_bound, upper_bound};
use crate::page::{Page, Range};
use chrono::{DateTime, Utc};
use cqrs_core::backend::{decode_metadata, recording_time};
use cqrs_core::{
    Appended, Direction, EventFilter, EventRef, ExpectedVersion, Metadata, NewEvent, RecordedEvent,
    StoreError, Visitor,
};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, ErrorCode, Row, Rows, ToSql};
use std::ops::ControlFlow;
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
/// Every event up to a position, newest first.
const GLOBAL_BACKWARD: &str =
    select_events!("WHERE position <= ?1 ORDER BY position DESC LIMIT ?2");

// Filtered reads of the log (schema 6): up to `log_indexed.up_to`, one range of
// `log_by_category` or `log_by_type` per category (or event type) asked for, in position
// order, each event read from the table by its position; several ranges are merged by
// `select_log`. After it, a scan of the few events not yet indexed. Parameters of the
// indexed ranges: ?1 the category or type, ?2 and ?3 the lowest and highest position, ?4
// the limit, ?5 the categories as a JSON array.

/// Selects the columns [`recorded_event`] expects from the event that an entry `i` of a
/// `log_by_*` table points to.
macro_rules! select_indexed {
    ($table:literal, $key:literal, $rest:literal) => {
        concat!(
            "SELECT e.position, e.stream_id, e.version, e.event_id, e.event_type, \
             e.schema_version, e.payload, e.metadata, e.recorded_at FROM ",
            $table,
            " AS i JOIN events AS e ON e.position = i.position WHERE i.",
            $key,
            " = ?1 AND i.position BETWEEN ?2 AND ?3 ",
            $rest
        )
    };
}

/// A category's indexed events, oldest first.
const CATEGORY_FORWARD: &str = select_indexed!(
    "log_by_category",
    "category",
    "ORDER BY i.position LIMIT ?4"
);
/// A category's indexed events, newest first.
const CATEGORY_BACKWARD: &str = select_indexed!(
    "log_by_category",
    "category",
    "ORDER BY i.position DESC LIMIT ?4"
);
/// An event type's indexed events, oldest first.
const TYPE_FORWARD: &str =
    select_indexed!("log_by_type", "event_type", "ORDER BY i.position LIMIT ?4");
/// An event type's indexed events, newest first.
const TYPE_BACKWARD: &str = select_indexed!(
    "log_by_type",
    "event_type",
    "ORDER BY i.position DESC LIMIT ?4"
);
/// An event type's indexed events in some categories, oldest first.
const TYPE_CATEGORIES_FORWARD: &str = select_indexed!(
    "log_by_type",
    "event_type",
    "AND e.category IN (SELECT value FROM json_each(?5)) ORDER BY i.position LIMIT ?4"
);
/// An event type's indexed events in some categories, newest first.
const TYPE_CATEGORIES_BACKWARD: &str = select_indexed!(
    "log_by_type",
    "event_type",
    "AND e.category IN (SELECT value FROM json_each(?5)) ORDER BY i.position DESC LIMIT ?4"
);

/// The events between two positions (?1, ?2) that a filter takes, oldest first: the scan
/// of the events not indexed yet. ?4 the categories, ?5 the types, as JSON arrays (NULL:
/// any); ?3 the limit.
const TAIL_FORWARD: &str = select_events!(
    "WHERE position BETWEEN ?1 AND ?2 \
     AND (?4 IS NULL OR category IN (SELECT value FROM json_each(?4))) \
     AND (?5 IS NULL OR event_type IN (SELECT value FROM json_each(?5))) \
     ORDER BY position LIMIT ?3"
);
/// The same, newest first.
const TAIL_BACKWARD: &str = select_events!(
    "WHERE position BETWEEN ?1 AND ?2 \
     AND (?4 IS NULL OR category IN (SELECT value FROM json_each(?4))) \
     AND (?5 IS NULL OR event_type IN (SELECT value FROM json_each(?5))) \
     ORDER BY position DESC LIMIT ?3"
);

/// The position up to which `log_by_category` and `log_by_type` hold every event.
const INDEXED_UP_TO: &str = "SELECT up_to FROM log_indexed";

/// The latest event's position and time, and how far the log is indexed, for an append.
const LAST_AND_INDEXED: &str = "SELECT position, recorded_at, \
    (SELECT up_to FROM log_indexed) FROM events ORDER BY position DESC LIMIT 1";

/// Events appended after which the append that completes the batch indexes them (see
/// schema 6): a filtered read scans at most about this many events past the indexed ones.
pub(crate) const INDEX_BATCH: u64 = 128;

/// Indexes the events after position ?1 up to ?2 by category (rows whose stream id is not
/// text have no entry). `OR IGNORE`: an entry already there (if `log_indexed` was lost,
/// indexing starts again from 0) is the same entry.
const INDEX_CATEGORIES: &str = "INSERT OR IGNORE INTO log_by_category (category, position) \
    SELECT category, position FROM events \
    WHERE position > ?1 AND position <= ?2 AND typeof(stream_id) = 'text'";
/// The same by event type.
const INDEX_TYPES: &str = "INSERT OR IGNORE INTO log_by_type (event_type, position) \
    SELECT event_type, position FROM events \
    WHERE position > ?1 AND position <= ?2 AND typeof(event_type) = 'text'";
/// Records the position up to which the log is indexed.
const RECORD_INDEXED: &str = "INSERT OR REPLACE INTO log_indexed (only, up_to) VALUES (1, ?1)";

/// The events with the ids of a JSON array of hex strings, through `UNIQUE(event_id)`.
const BY_IDS: &str =
    select_events!("WHERE event_id IN (SELECT unhex(value) FROM json_each(?1)) ORDER BY position");

/// The first event at or after a position, with its time: one probe of the search for the
/// first position at an instant (one seek of the table's b-tree).
const FIRST_FROM: &str =
    "SELECT position, recorded_at FROM events WHERE position >= ?1 ORDER BY position LIMIT 1";

/// The latest event, with its time (the largest rowid: one step down the table's b-tree).
const LAST: &str = "SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1";

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

/// The first row between two positions whose stream id or type is not text: what the
/// category and type indexes cannot hold, and filtered reads would pass over. The partial
/// index of the same condition is empty in a healthy file.
const UNREADABLE: &str = select_events!(
    "INDEXED BY events_unreadable \
     WHERE (typeof(stream_id) != 'text' OR typeof(event_type) != 'text') \
     AND position BETWEEN ?1 AND ?2 ORDER BY position LIMIT 1"
);

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

/// Checks that no row between `first` and `last` (positions, inclusive) has a stream id or
/// type that a filtered read cannot match: such a row is `Corrupt`, never passed over.
pub(crate) fn check_unreadable(conn: &Connection, first: u64, last: u64) -> Result<(), StoreError> {
    let (first, last) = (upper_bound(first), upper_bound(last));
    let mut statement = conn.prepare_cached(UNREADABLE).map_err(store_error)?;
    let mut rows = statement.query(params![first, last]).map_err(store_error)?;
    match rows.next().map_err(store_error)? {
        None => Ok(()),
        Some(row) => match recorded_event(row, None) {
            Err(corrupt) => Err(corrupt),
            // Not reachable while `recorded_event` checks both columns' types; kept typed.
            Ok(event) => Err(StoreError::Corrupt {
                stream_id: event.stream_id,
                version: event.version,
                position: Some(event.position),
                reason: "its stream id or event type is not stored as text".to_owned(),
            }),
        },
    }
}

/// Whether the log has used the largest position SQLite can hold (with `AUTOINCREMENT`,
/// later inserts fail with SQLITE_FULL instead of reusing one).
fn positions_exhausted(conn: &Connection) -> bool {
    conn.prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
        .and_then(|mut statement| statement.query_row([], |row| row.get::<_, i64>(0)))
        .is_ok_and(|seq| seq == i64::MAX)
}

/// Checks the expected version and inserts the events, inside the caller's savepoint,
/// recorded now but never before the latest stored event (read here, under the write
/// lock, so `recorded_at` never decreases along positions even if the clock steps back).
pub(crate) fn append(
    conn: &Connection,
    stream_id: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<Appended, StoreError> {
    let current = stream_version(conn, stream_id)?;
    expected.check(stream_id, current)?;
    if events.is_empty() {
        return Ok(Appended {
            version: current.unwrap_or(0),
            events: Vec::new(),
        });
    }
    let (last_time, indexed) = last_and_indexed(conn)?;
    let recorded_at = recording_time(last_time);
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
    if let Some(last) = recorded.last() {
        if last.position.saturating_sub(indexed) >= INDEX_BATCH {
            index_events(conn, indexed, last.position)?;
        }
    }
    Ok(Appended {
        version,
        events: recorded,
    })
}

/// The position and time (microseconds) of the one event `sql` selects with `bound`, if any.
fn position_and_time(
    conn: &Connection,
    sql: &str,
    bound: impl rusqlite::Params,
) -> Result<Option<(i64, i64)>, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| {
            let mut rows = statement.query(bound)?;
            rows.next()?
                .map(|row| Ok((row.get(0)?, row.get(1)?)))
                .transpose()
        })
        .map_err(store_error)
}

/// The time of the latest stored event, if any, and the position up to which the log is
/// indexed (0 if `log_indexed` has no row).
fn last_and_indexed(conn: &Connection) -> Result<(Option<DateTime<Utc>>, u64), StoreError> {
    let last = conn
        .prepare_cached(LAST_AND_INDEXED)
        .and_then(|mut statement| {
            let mut rows = statement.query([])?;
            rows.next()?
                .map(|row| Ok((row.get::<_, i64>(1)?, row.get::<_, Option<i64>>(2)?)))
                .transpose()
        })
        .map_err(store_error)?;
    let Some((micros, indexed)) = last else {
        return Ok((None, 0));
    };
    let indexed = convert(indexed.unwrap_or(0), "log_indexed.up_to")?;
    match DateTime::from_timestamp_micros(micros) {
        Some(last) => Ok((Some(last), indexed)),
        None => Err(SqliteError::OutOfRange {
            what: "recorded_at of the latest event",
            value: micros.to_string(),
        }
        .into()),
    }
}

/// Indexes the events after position `after` up to `to` (see schema 6), in the caller's
/// transaction.
fn index_events(conn: &Connection, after: u64, to: u64) -> Result<(), StoreError> {
    let (after, to) = (upper_bound(after), upper_bound(to));
    for sql in [INDEX_CATEGORIES, INDEX_TYPES] {
        conn.prepare_cached(sql)
            .and_then(|mut statement| statement.execute(params![after, to]))
            .map_err(store_error)?;
    }
    conn.prepare_cached(RECORD_INDEXED)
        .and_then(|mut statement| statement.execute([to]))
        .map_err(store_error)?;
    Ok(())
}

/// Reads and decodes the events of `page`, in the page's order.
pub(crate) fn select(conn: &Connection, page: &Page) -> Result<Vec<RecordedEvent>, StoreError> {
    if let Range::Log {
        direction,
        filter,
        from,
    } = &page.range
    {
        if !filter.is_all() {
            let from = match direction {
                Direction::Forward => lower_bound(*from),
                Direction::Backward => Some(upper_bound(*from)),
            };
            let Some(from) = from else {
                return Ok(Vec::new()); // starts past every position SQLite can hold
            };
            return select_log(conn, *direction, filter, from, page.limit);
        }
    }
    let mut events = Vec::with_capacity(page.limit.min(PREALLOCATED_ROWS));
    each_row(conn, page, &mut |row, known_stream| {
        events.push(recorded_event(row, known_stream)?);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(events)
}

/// Hands the events of `page` to `visit` borrowed from SQLite's rows, in the page's order,
/// until it breaks; how many it was handed. For a stream's pages and the whole log's: a
/// filtered read of the log merges index ranges, and is read with [`select`].
pub(crate) fn visit(
    conn: &Connection,
    page: &Page,
    visit: &mut Visitor<'_>,
) -> Result<usize, StoreError> {
    each_row(conn, page, &mut |row, known_stream| {
        Ok(visit(event_ref(row, known_stream)?))
    })
}

/// Reads the events of `page` (a stream's page or the whole log's, as [`visit`]) into one
/// buffer.
pub(crate) fn read_buffer(conn: &Connection, page: &Page) -> Result<EventBuffer, StoreError> {
    let mut buffer = EventBuffer::with_capacity(page.limit.min(PREALLOCATED_ROWS));
    visit(conn, page, &mut |event| {
        buffer.push(event);
        ControlFlow::Continue(())
    })?;
    Ok(buffer)
}

/// What [`each_row`] does with a row (and the stream id the read asked for, if any).
type EachRow<'f> = dyn FnMut(&Row<'_>, Option<&str>) -> Result<ControlFlow<()>, StoreError> + 'f;

/// Runs the query of a stream page or of an unfiltered log page, handing each row to
/// `each` until it breaks; how many rows it was handed.
fn each_row(conn: &Connection, page: &Page, each: &mut EachRow<'_>) -> Result<usize, StoreError> {
    let limit = upper_bound(page.limit);
    // The query, the stream it reads (if one) and its bound (`None`: a stream from its
    // start; `Some(None)`: past every value SQLite can hold, so nothing).
    let (sql, stream_id, from) = match &page.range {
        Range::StreamForward { stream_id, from } if *from <= 1 => {
            (STREAM_FROM_START, Some(stream_id.as_str()), None)
        }
        Range::StreamForward { stream_id, from } => (
            STREAM_FORWARD,
            Some(stream_id.as_str()),
            Some(lower_bound(*from)),
        ),
        Range::StreamBackward { stream_id, from } => (
            STREAM_BACKWARD,
            Some(stream_id.as_str()),
            Some(Some(upper_bound(*from))),
        ),
        Range::Log {
            direction: Direction::Forward,
            from,
            ..
        } => (GLOBAL_FORWARD, None, Some(lower_bound(*from))),
        Range::Log {
            direction: Direction::Backward,
            from,
            ..
        } => (GLOBAL_BACKWARD, None, Some(Some(upper_bound(*from)))),
    };
    let from = match from {
        Some(None) => return Ok(0),
        Some(Some(from)) => Some(from),
        None => None,
    };
    // Parameters in the queries' order: the stream, the bound, the limit.
    let mut bound: Vec<&dyn ToSql> = Vec::with_capacity(3);
    if let Some(stream_id) = &stream_id {
        bound.push(stream_id);
    }
    if let Some(from) = &from {
        bound.push(from);
    }
    bound.push(&limit);
    let mut statement = conn.prepare_cached(sql).map_err(store_error)?;
    let rows = statement.query(&bound[..]);
    let mut rows = rows.map_err(store_error)?;
    let mut handed = 0;
    while let Some(row) = rows.next().map_err(store_error)? {
        handed += 1;
        if each(row, stream_id)?.is_break() {
            break;
        }
    }
    Ok(handed)
}

/// Reads up to `wanted` events of the log that `filter` (not `all`) takes, from position
/// `from` on in `direction`: those up to `log_indexed.up_to` through the `log_by_*`
/// tables ([`select_indexed`]), those after it by a scan ([`select_tail`]); all in one
/// read transaction, so that what is indexed and what is scanned meet exactly.
fn select_log(
    conn: &Connection,
    direction: Direction,
    filter: &EventFilter,
    from: i64,
    wanted: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    // Declared first, so that it ends after the statements.
    let _snapshot = if conn.is_autocommit() {
        Some(conn.unchecked_transaction().map_err(store_error)?)
    } else {
        None
    };
    let indexed: i64 = conn
        .prepare_cached(INDEXED_UP_TO)
        .and_then(|mut statement| {
            let mut rows = statement.query([])?;
            rows.next()?.map(|row| row.get(0)).transpose()
        })
        .map_err(store_error)?
        .unwrap_or(0);
    let scanned_from = indexed.saturating_add(1);
    let mut events = Vec::new();
    if direction == Direction::Forward {
        if from <= indexed {
            events = select_indexed(conn, direction, filter, (from, indexed), wanted)?;
        }
        let left = wanted - events.len();
        if left > 0 {
            let range = (from.max(scanned_from), i64::MAX);
            events.extend(select_tail(conn, direction, filter, range, left)?);
        }
    } else {
        if from >= scanned_from {
            events = select_tail(conn, direction, filter, (scanned_from, from), wanted)?;
        }
        let left = wanted - events.len();
        if left > 0 {
            let range = (i64::MIN, from.min(indexed));
            events.extend(select_indexed(conn, direction, filter, range, left)?);
        }
    }
    Ok(events)
}

/// Reads up to `wanted` indexed events that `filter` takes with positions in `range`
/// (inclusive), in `direction`: one range of `log_by_type` per event type asked for (or,
/// with no type, of `log_by_category` per category), each in position order, merged by
/// position. The ranges never share an event (an event has one category and one type),
/// and each is stepped only as far as the merge takes from it.
///
/// With both lists, the type ranges are read and the categories checked on each row: an
/// event type usually belongs to one aggregate, so its range holds few events of other
/// categories, where a category's range holds every other type of that aggregate.
///
/// An entry pointing at an event the filter does not take (its row changed by hand after
/// it was indexed) is `Corrupt`, never passed on.
fn select_indexed(
    conn: &Connection,
    direction: Direction,
    filter: &EventFilter,
    (low, high): (i64, i64),
    wanted: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let forward = direction == Direction::Forward;
    let categories_json;
    let (sql, keys, categories): (&str, Vec<&String>, Option<&String>) =
        match (filter.categories(), filter.event_types()) {
            (Some(categories), Some(types)) => {
                categories_json = json_array(categories.iter().map(String::as_str))?;
                let sql = if forward {
                    TYPE_CATEGORIES_FORWARD
                } else {
                    TYPE_CATEGORIES_BACKWARD
                };
                (sql, types.iter().collect(), Some(&categories_json))
            }
            (Some(categories), None) => {
                let sql = if forward {
                    CATEGORY_FORWARD
                } else {
                    CATEGORY_BACKWARD
                };
                (sql, categories.iter().collect(), None)
            }
            (None, Some(types)) => {
                let sql = if forward { TYPE_FORWARD } else { TYPE_BACKWARD };
                (sql, types.iter().collect(), None)
            }
            (None, None) => return Ok(Vec::new()), // `all` is read without an index
        };
    let limit = upper_bound(wanted);
    // One statement per range (the same SQL prepared again for each one after the first,
    // since a cached statement serves one query at a time).
    let mut statements = Vec::with_capacity(keys.len());
    for _ in 0..keys.len() {
        statements.push(conn.prepare_cached(sql).map_err(store_error)?);
    }
    let mut cursors = Vec::with_capacity(keys.len());
    for (key, statement) in keys.iter().zip(statements.iter_mut()) {
        let rows = match categories {
            None => statement.query(params![key, low, high, limit]),
            Some(categories) => statement.query(params![key, low, high, limit, categories]),
        };
        cursors.push(rows.map_err(store_error)?);
    }
    let events = merge(&mut cursors, forward, wanted)?;
    if let Some(stray) = events
        .iter()
        .find(|event| !filter.matches(&event.stream_id, &event.event_type))
    {
        return Err(StoreError::Corrupt {
            stream_id: stray.stream_id.clone(),
            version: stray.version,
            position: Some(stray.position),
            reason: format!(
                "the log's index lists it under a category or type it does not have \
                 (type {:?}): its row was changed after it was indexed",
                stray.event_type
            ),
        });
    }
    Ok(events)
}

/// Reads up to `wanted` events that `filter` takes with positions in `range` (inclusive),
/// in `direction`, by a scan of the table: for the events after the indexed ones.
fn select_tail(
    conn: &Connection,
    direction: Direction,
    filter: &EventFilter,
    (low, high): (i64, i64),
    wanted: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = match direction {
        Direction::Forward => TAIL_FORWARD,
        Direction::Backward => TAIL_BACKWARD,
    };
    let categories = filter
        .categories()
        .map(|categories| json_array(categories.iter().map(String::as_str)))
        .transpose()?;
    let types = filter
        .event_types()
        .map(|types| json_array(types.iter().map(String::as_str)))
        .transpose()?;
    let mut statement = conn.prepare_cached(sql).map_err(store_error)?;
    let mut rows = statement
        .query(params![low, high, upper_bound(wanted), categories, types])
        .map_err(store_error)?;
    let mut events = Vec::with_capacity(wanted.min(PREALLOCATED_ROWS));
    while let Some(row) = rows.next().map_err(store_error)? {
        events.push(recorded_event(row, None)?);
    }
    Ok(events)
}

/// Takes up to `wanted` events from `cursors` (each in the read's order), the next one
/// always from the cursor whose event comes first: lowest position forward, highest
/// backward.
fn merge(
    cursors: &mut [Rows<'_>],
    forward: bool,
    wanted: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut heads = Vec::with_capacity(cursors.len());
    for cursor in cursors.iter_mut() {
        heads.push(next_event(cursor)?);
    }
    let mut events = Vec::with_capacity(wanted.min(PREALLOCATED_ROWS));
    while events.len() < wanted {
        let first = heads
            .iter()
            .enumerate()
            .filter_map(|(i, head)| head.as_ref().map(|event| (i, event.position)))
            .reduce(|a, b| {
                let b_first = if forward { b.1 < a.1 } else { b.1 > a.1 };
                if b_first {
                    b
                } else {
                    a
                }
            });
        let Some((i, _)) = first else {
            break;
        };
        let next = if events.len() + 1 < wanted {
            next_event(&mut cursors[i])?
        } else {
            None // the page is full with this event: read no further
        };
        if let Some(event) = std::mem::replace(&mut heads[i], next) {
            events.push(event);
        }
    }
    Ok(events)
}

/// The cursor's next event, decoded.
fn next_event(cursor: &mut Rows<'_>) -> Result<Option<RecordedEvent>, StoreError> {
    match cursor.next().map_err(store_error)? {
        Some(row) => recorded_event(row, None).map(Some),
        None => Ok(None),
    }
}

/// `items` as a JSON array of strings, the one parameter a variable-length list is bound
/// as (read back in SQL with `json_each`), so each query keeps one prepared statement.
fn json_array<'a>(items: impl Iterator<Item = &'a str>) -> Result<String, StoreError> {
    serde_json::to_string(&items.collect::<Vec<_>>()).map_err(|e| StoreError::Backend(Box::new(e)))
}

/// The stored events with these ids, in position order (each id once, unknown ones left
/// out), in one query through `UNIQUE(event_id)`.
pub(crate) fn select_by_ids(
    conn: &Connection,
    event_ids: &[Uuid],
) -> Result<Vec<RecordedEvent>, StoreError> {
    if event_ids.is_empty() {
        return Ok(Vec::new());
    }
    let hex: Vec<String> = event_ids.iter().map(|id| id.simple().to_string()).collect();
    let ids = json_array(hex.iter().map(String::as_str))?;
    let mut statement = conn.prepare_cached(BY_IDS).map_err(store_error)?;
    let mut rows = statement.query([ids]).map_err(store_error)?;
    let mut events = Vec::with_capacity(event_ids.len().min(PREALLOCATED_ROWS));
    while let Some(row) = rows.next().map_err(store_error)? {
        events.push(recorded_event(row, None)?);
    }
    Ok(events)
}

/// The first position recorded at or after `at` (`None`: there is none).
///
/// `recorded_at` never decreases along positions, so the table's own order (by position,
/// its rowid) is time order, and a binary search over positions finds the instant: a few
/// dozen seeks at most, and no index on `recorded_at` for every append to keep up.
pub(crate) fn position_at(conn: &Connection, at: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
    // Stored times are whole microseconds: an instant between two of them is found from
    // the next one up.
    let partial = !at.timestamp_subsec_nanos().is_multiple_of(1_000);
    let micros = at.timestamp_micros().saturating_add(i64::from(partial));
    let Some((last, last_micros)) = position_and_time(conn, LAST, [])? else {
        return Ok(None);
    };
    if last_micros < micros {
        return Ok(None);
    }
    // The time of the first event at or after position `x` grows with `x`; find the
    // smallest `x` at which it reaches `micros` (it does at `last`).
    let (mut low, mut high) = (0_i64, last);
    let mut found = last;
    while low < high {
        let middle = low + (high - low) / 2;
        // There is one: `last` is at or after `middle`.
        let Some((position, time)) = position_and_time(conn, FIRST_FROM, [middle])? else {
            break;
        };
        if time >= micros {
            high = middle;
            found = position;
        } else {
            low = middle + 1;
        }
    }
    convert(found, "position")
        .map(Some)
        .map_err(StoreError::from)
}

/// Which event a row holds: its stream id, version and position, all of them valid.
struct Identity<'a> {
    stream_id: &'a str,
    version: u64,
    position: u64,
}

impl Identity<'_> {
    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            stream_id: self.stream_id.to_owned(),
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
fn identify<'a>(
    row: &'a Row<'_>,
    known_stream: Option<&'a str>,
) -> Result<Identity<'a>, StoreError> {
    let position = read_position(column(row, 0)?);
    let stream_id = match known_stream {
        Some(stream_id) => Ok(stream_id),
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
                Ok(stream_id) => (stream_id.to_owned(), None),
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
fn read_stream_id(value: ValueRef<'_>) -> Result<&str, (String, String)> {
    match value {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).map_err(|e| {
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
    let event = event_ref(row, known_stream)?;
    let metadata = match column(row, 7)? {
        ValueRef::Text(bytes) => decode_metadata(bytes).map_err(|e| format!("is not valid: {e}")),
        other => Err(format!("is {}, not text", describe(other))),
    };
    let metadata = metadata.map_err(|reason| StoreError::Corrupt {
        stream_id: event.stream_id.to_owned(),
        version: event.version,
        position: Some(event.position),
        reason: format!("metadata {reason}"),
    })?;
    Ok(event.to_recorded(metadata))
}

/// Reads one row in place, every column but the metadata (which a visit does not read);
/// a damaged one is `Corrupt`, as in [`recorded_event`].
fn event_ref<'a>(
    row: &'a Row<'_>,
    known_stream: Option<&'a str>,
) -> Result<EventRef<'a>, StoreError> {
    let identity = identify(row, known_stream)?;
    let corrupt = |reason: String| identity.corrupt(reason);
    let text = |index: usize, name: &str| -> Result<&'a str, StoreError> {
        match column(row, index)? {
            ValueRef::Text(bytes) => {
                std::str::from_utf8(bytes).map_err(|e| corrupt(format!("{name} is not UTF-8: {e}")))
            }
            other => Err(corrupt(format!("{name} is {}, not text", describe(other)))),
        }
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
    let micros = integer(8, "recorded_at")?;
    let recorded_at = DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| corrupt(format!("recorded_at {micros} is out of range")))?;
    Ok(EventRef {
        stream_id: identity.stream_id,
        version: identity.version,
        position: identity.position,
        event_id,
        event_type,
        schema_version,
        payload,
        recorded_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::SqliteOptions;
    use crate::sql::schema;

    /// The plan SQLite chooses for `sql`, one line per step.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Unbound parameters read as NULL; the plan does not depend on them.
        let mut rows = statement.raw_query();
        let mut steps = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            steps.push(row.get::<_, String>(3).unwrap());
        }
        steps.join("\n")
    }

    /// Reads of the log seek an index range in the read's order (an indexed one then reads
    /// each event by its position), and never scan the table or sort what they found; the
    /// lookup by id seeks its index, by time the table.
    #[test]
    fn log_reads_and_lookups_seek_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let conn = schema::open_writer(&path, &SqliteOptions::default()).unwrap();
        let by_position = "SEARCH e USING INTEGER PRIMARY KEY (rowid=?)";
        let reads = [
            (
                GLOBAL_FORWARD,
                "SEARCH events USING INTEGER PRIMARY KEY (rowid>?)",
                None,
            ),
            (
                GLOBAL_BACKWARD,
                "SEARCH events USING INTEGER PRIMARY KEY (rowid<?)",
                None,
            ),
            (
                TAIL_FORWARD,
                "SEARCH events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
                None,
            ),
            (
                TAIL_BACKWARD,
                "SEARCH events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
                None,
            ),
            (
                CATEGORY_FORWARD,
                "SEARCH i USING PRIMARY KEY (category=? AND position>? AND position<?)",
                Some(by_position),
            ),
            (
                CATEGORY_BACKWARD,
                "SEARCH i USING PRIMARY KEY (category=? AND position>? AND position<?)",
                Some(by_position),
            ),
            (
                TYPE_CATEGORIES_FORWARD,
                "SEARCH i USING PRIMARY KEY (event_type=? AND position>? AND position<?)",
                Some(by_position),
            ),
            (
                TYPE_CATEGORIES_BACKWARD,
                "SEARCH i USING PRIMARY KEY (event_type=? AND position>? AND position<?)",
                Some(by_position),
            ),
            (
                TYPE_FORWARD,
                "SEARCH i USING PRIMARY KEY (event_type=? AND position>? AND position<?)",
                Some(by_position),
            ),
            (
                TYPE_BACKWARD,
                "SEARCH i USING PRIMARY KEY (event_type=? AND position>? AND position<?)",
                Some(by_position),
            ),
            (
                FIRST_FROM,
                "SEARCH events USING INTEGER PRIMARY KEY (rowid>?)",
                None,
            ),
        ];
        for (sql, search, then) in reads {
            let plan = plan(&conn, sql);
            let mut steps = plan.lines().filter(|step| step.starts_with("SEARCH"));
            assert_eq!(steps.next(), Some(search), "{sql}:\n{plan}");
            if let Some(then) = then {
                assert_eq!(steps.next(), Some(then), "{sql}:\n{plan}");
            }
            // Only the filter's own lists (`json_each`) are scanned.
            let scans = plan
                .lines()
                .any(|step| step.contains("SCAN") && !step.contains("json_each"));
            assert!(!scans, "{sql} scans:\n{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql} sorts:\n{plan}");
        }
        let by_ids = plan(&conn, BY_IDS);
        assert!(
            by_ids.starts_with("SEARCH events USING INDEX sqlite_autoindex_events_1 (event_id=?)"),
            "{by_ids}"
        );
    }

    /// A read merging several ranges reads them in one transaction of its own, and leaves
    /// none open behind it.
    #[test]
    fn a_merged_read_ends_its_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let conn = schema::open_writer(&path, &SqliteOptions::default()).unwrap();
        for (stream, event_type) in [("A-1", "X"), ("B-1", "Y"), ("A-1", "Y")] {
            let event = NewEvent {
                event_id: Uuid::new_v4(),
                event_type: event_type.into(),
                schema_version: 1,
                payload: "{}".into(),
                metadata: Metadata::new(),
            };
            append(&conn, stream, ExpectedVersion::Any, vec![event]).unwrap();
        }
        let read = |filter: EventFilter, direction| {
            let range = Range::Log {
                from: if direction == Direction::Forward {
                    0
                } else {
                    u64::MAX
                },
                direction,
                filter,
            };
            let page = Page { range, limit: 10 };
            let events = select(&conn, &page).unwrap();
            assert!(conn.is_autocommit(), "a transaction was left open");
            events.iter().map(|e| e.position).collect::<Vec<_>>()
        };
        let both = EventFilter::all().with_categories(["A", "B"]);
        assert_eq!(read(both.clone(), Direction::Forward), [1, 2, 3]);
        assert_eq!(read(both.clone(), Direction::Backward), [3, 2, 1]);
        let types = both.with_event_types(["X", "Y", "Z"]);
        assert_eq!(read(types.clone(), Direction::Forward), [1, 2, 3]);
        let only_a = EventFilter::all()
            .with_categories(["A"])
            .with_event_types(["Y", "Z"]);
        assert_eq!(read(only_a, Direction::Backward), [3]);
    }

    /// SQL's category (the generated column) is `cqrs_core::category`, on any stream id.
    #[test]
    fn the_stored_category_is_the_one_the_core_computes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let conn = schema::open_writer(&path, &SqliteOptions::default()).unwrap();
        let ids = [
            "Cart-42",
            "Cart-4-2",
            "Cart-",
            "Cart",
            "-42",
            "--",
            "Käse-1",
            "日本-語",
            "a\u{2010}b-c",
            " Cart -1",
        ];
        for (version, id) in (1..).zip(ids) {
            let uuid = Uuid::new_v4();
            conn.execute(
                "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, \
                 payload, metadata, recorded_at) VALUES (?1, ?2, ?3, 'T', 1, '{}', '{}', 0)",
                params![id, version, uuid.as_bytes().as_slice()],
            )
            .unwrap();
            let stored: String = conn
                .query_row(
                    "SELECT category FROM events WHERE event_id = ?1",
                    [uuid.as_bytes().as_slice()],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(stored, cqrs_core::category(id), "{id:?}");
        }
    }
}
