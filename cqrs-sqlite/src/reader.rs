//! Reads: a pool of read-only connections, the event queries, and row decoding.
//!
//! Short reads run on the caller's thread: a WAL reader never waits for the writer, and
//! reading a few rows costs less than handing the work to another thread and back (measured:
//! a `spawn_blocking` round trip per read held W1 to a third of its rate). A page longer than
//! [`INLINE_ROWS`] continues on tokio's blocking pool, so a long read never holds up the
//! async runtime for more than those rows.
//!
//! Long reads come in sequences of pages (replays, catch-ups, subscriptions), so once a
//! long page came back full, the next one is read ahead while the caller works on this
//! one (see [`ReadAhead`]).

use crate::error::{store_error, SqliteError};
use crate::options::SqliteOptions;
use crate::schema::connect;
use crate::writer::Writer;
use chrono::DateTime;
use cqrs_core::{RecordedEvent, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, Row};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Idle connections kept for reuse; more may be open while many reads run at once.
const MAX_IDLE: usize = 4;

/// Rows of a page read on the caller's thread; the rest of a longer page is read on the
/// blocking pool. About a tenth of a millisecond of work.
pub(crate) const INLINE_ROWS: usize = 256;

/// Rows past the inline ones from which a page is read in two halves at once.
const PARALLEL_ROWS: usize = 1024;

/// Longer pages are read in one go: a huge limit says "everything", not how much is there.
const MAX_SPLIT_ROWS: usize = 1 << 20;

/// Connections for reads, apart from the writer's so reads never wait for a commit (WAL).
pub(crate) struct Readers {
    writer: Writer,
    path: PathBuf,
    options: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
    ahead: Mutex<Option<ReadAhead>>,
}

/// The page after the last full long page, being read on the blocking pool.
///
/// It is used only if it comes back full: a full page read earlier is the page a read now
/// would give, because later commits only add events after every stored one (positions
/// grow in commit order; a stream's versions grow and never change). A short one may
/// miss events committed since, so it is read again.
struct ReadAhead {
    query: EventQuery,
    page: JoinHandle<Result<Vec<RecordedEvent>, StoreError>>,
}

impl Readers {
    pub fn new(writer: Writer, path: PathBuf, options: SqliteOptions) -> Self {
        Self {
            writer,
            path,
            options,
            idle: Mutex::new(Vec::new()),
            ahead: Mutex::new(None),
        }
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

    /// Runs `read` on a pooled connection on tokio's blocking pool, for reads too long to
    /// run on the async runtime.
    pub async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || readers.pooled(read))
            .await
            .map_err(|e| SqliteError::ReadTask(e.to_string()))?
    }

    /// Runs an event query: its first [`INLINE_ROWS`] rows on the caller's thread, the rest
    /// of the page (if any) on the blocking pool.
    pub async fn events(
        self: &Arc<Self>,
        query: EventQuery,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let ahead = {
            let mut slot = self.ahead.lock().unwrap_or_else(PoisonError::into_inner);
            slot.take_if(|ahead| ahead.query == query)
        };
        if let Some(ahead) = ahead {
            if let Ok(Ok(events)) = ahead.page.await {
                if events.len() == query.limit {
                    self.read_ahead(&query, &events);
                    return Ok(events);
                }
            }
        }
        let first = query.limit.min(INLINE_ROWS);
        let mut events = self.inline(|conn| query.run(conn, first))?;
        let rest = match events.last() {
            Some(last) if events.len() == first => query.rest(last, first),
            _ => None, // the range ended within the inline rows
        };
        if let Some(rest) = rest {
            events.extend(self.rest_of_page(rest).await?);
        }
        self.read_ahead(&query, &events);
        Ok(events)
    }

    /// Starts reading the page after `events` if they are a full long page of `query`.
    fn read_ahead(self: &Arc<Self>, query: &EventQuery, events: &[RecordedEvent]) {
        let next = match events.last() {
            Some(last) if events.len() == query.limit && query.limit >= PARALLEL_ROWS => {
                query.next_page(last)
            }
            _ => None,
        };
        let Some(next) = next else {
            return;
        };
        let readers = Arc::clone(self);
        let query = next.clone();
        let page = tokio::spawn(async move { readers.rest_of_page(next).await });
        let replaced = self
            .ahead
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(ReadAhead { query, page });
        if let Some(unused) = replaced {
            unused.page.abort();
        }
    }

    /// Reads the rest of a long page on the blocking pool, its two halves at once on two
    /// connections when the page is long enough (replays and catch-ups are bound by
    /// decoding rows, which then runs on two cores).
    async fn rest_of_page(
        self: &Arc<Self>,
        rest: EventQuery,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let Some((low, high)) = rest.halves() else {
            return self.run(move |conn| rest.run(conn, rest.limit)).await;
        };
        let (low_limit, high_from) = (low.limit, high.range.from());
        let (low, high) = tokio::join!(
            self.run(move |conn| low.run(conn, low.limit)),
            self.run(move |conn| high.run(conn, high.limit)),
        );
        let (mut low, high) = (low?, high?);
        // The halves join up when the low one holds every key below the high one's start
        // (keys of a stream's versions, and positions, have no gaps in practice).
        let dense = low.len() == low_limit
            && low
                .last()
                .is_some_and(|last| rest.range.key(last).checked_add(1) == Some(high_from));
        if dense || (low.len() < low_limit && high.is_empty()) {
            low.extend(high);
            return Ok(low);
        }
        // A gap, or events committed between the two reads: read on from the low half.
        let after = match low.last() {
            Some(last) => rest.rest(last, low.len()),
            None => Some(rest),
        };
        if let Some(after) = after {
            low.extend(self.run(move |conn| after.run(conn, after.limit)).await?);
        }
        Ok(low)
    }

    /// Opens the two connections a long page is read with, so that the first one is not
    /// slowed by opening them (a few milliseconds: a fifth of reading 20,000 events).
    pub fn open_idle(&self) -> Result<(), StoreError> {
        let (first, second) = (self.checkout()?, self.checkout()?);
        self.checkin(first);
        self.checkin(second);
        Ok(())
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

/// SQLite's integers are signed; larger limits and positions mean "no limit".
pub(crate) fn sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Which events a read asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Range {
    /// A stream's events with version `>= from`, oldest first.
    StreamForward { stream_id: String, from: u64 },
    /// A stream's events with version `<= from`, newest first.
    StreamBackward { stream_id: String, from: u64 },
    /// Every event with position `>= from`, in global order.
    Global { from: u64 },
}

impl Range {
    /// Where the range starts: a version or a position.
    fn from(&self) -> u64 {
        match self {
            Range::StreamForward { from, .. }
            | Range::StreamBackward { from, .. }
            | Range::Global { from } => *from,
        }
    }

    /// The key the range is ordered by, of one of its events.
    fn key(&self, event: &RecordedEvent) -> u64 {
        match self {
            Range::StreamForward { .. } | Range::StreamBackward { .. } => event.version,
            Range::Global { .. } => event.position,
        }
    }
}

/// A page of events: a range and how many of its events at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventQuery {
    pub range: Range,
    pub limit: usize,
}

impl EventQuery {
    /// Reads and decodes up to `limit` rows of the range.
    fn run(&self, conn: &Connection, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = sql_int(limit as u64);
        let (sql, key, from) = match &self.range {
            Range::StreamForward { stream_id, from } => (STREAM_FORWARD, Some(stream_id), from),
            Range::StreamBackward { stream_id, from } => (STREAM_BACKWARD, Some(stream_id), from),
            Range::Global { from } => (GLOBAL_FORWARD, None, from),
        };
        let mut statement = conn.prepare_cached(sql).map_err(store_error)?;
        let rows = match key {
            Some(stream_id) => statement.query(params![stream_id, sql_int(*from), limit]),
            None => statement.query(params![sql_int(*from), limit]),
        };
        let mut rows = rows.map_err(store_error)?;
        let mut events = Vec::with_capacity(usize::try_from(limit).unwrap_or(0).min(INLINE_ROWS));
        while let Some(row) = rows.next().map_err(store_error)? {
            events.push(recorded_event(row, key.map(String::as_str))?);
        }
        Ok(events)
    }

    /// The page cut in two at half its length, for reading both at once: `None` for a page
    /// too short to be worth two threads, for an unbounded one, and for backward reads.
    fn halves(&self) -> Option<(EventQuery, EventQuery)> {
        if !(PARALLEL_ROWS..=MAX_SPLIT_ROWS).contains(&self.limit) {
            return None;
        }
        let half = self.limit / 2;
        let high_from = self.range.from().checked_add(half as u64)?;
        let high_range = match &self.range {
            Range::StreamForward { stream_id, .. } => Range::StreamForward {
                stream_id: stream_id.clone(),
                from: high_from,
            },
            Range::Global { .. } => Range::Global { from: high_from },
            Range::StreamBackward { .. } => return None,
        };
        let low = EventQuery {
            range: self.range.clone(),
            limit: half,
        };
        let high = EventQuery {
            range: high_range,
            limit: self.limit - half,
        };
        Some((low, high))
    }

    /// The rest of this page once `read` events ending with `last` were read (`None`: the
    /// page is complete).
    fn rest(&self, last: &RecordedEvent, read: usize) -> Option<EventQuery> {
        let limit = self.limit.checked_sub(read).filter(|&left| left > 0)?;
        let range = self.range_after(last)?;
        Some(EventQuery { range, limit })
    }

    /// The page of the same length after this one, which ended with `last` (forward reads
    /// only).
    fn next_page(&self, last: &RecordedEvent) -> Option<EventQuery> {
        match self.range {
            Range::StreamBackward { .. } => None,
            _ => Some(EventQuery {
                range: self.range_after(last)?,
                limit: self.limit,
            }),
        }
    }

    /// This range's events after `last`.
    fn range_after(&self, last: &RecordedEvent) -> Option<Range> {
        Some(match &self.range {
            Range::StreamForward { stream_id, .. } => Range::StreamForward {
                stream_id: stream_id.clone(),
                from: last.version.checked_add(1)?,
            },
            Range::StreamBackward { stream_id, .. } => Range::StreamBackward {
                stream_id: stream_id.clone(),
                from: last.version.checked_sub(1).filter(|&v| v > 0)?,
            },
            Range::Global { .. } => Range::Global {
                from: last.position.checked_add(1)?,
            },
        })
    }
}

/// Decodes one row; a damaged envelope is a `Corrupt` error naming stream and version.
///
/// Text columns are copied once, straight from SQLite's buffer into the event's `String`s;
/// metadata is parsed from that buffer without a copy. A stream read passes the stream id
/// it asked for (`known_stream`), saving a column read and its UTF-8 check per row.
fn recorded_event(row: &Row<'_>, known_stream: Option<&str>) -> Result<RecordedEvent, StoreError> {
    let stream_id: String = match known_stream {
        Some(stream_id) => stream_id.to_owned(),
        None => row.get(1).map_err(store_error)?,
    };
    let version: i64 = row.get(2).map_err(store_error)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        stream_id: stream_id.clone(),
        version: version as u64,
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
    let metadata = cqrs_core::backend::decode_metadata(bytes(7, "metadata")?)
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

#[cfg(test)]
mod tests {
    use crate::SqliteStore;
    use cqrs_core::{EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent};
    use uuid::Uuid;

    use super::{INLINE_ROWS, PARALLEL_ROWS};

    fn event(n: usize) -> NewEvent {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "Counted".into(),
            schema_version: 1,
            payload: format!("{{\"n\":{n}}}"),
            metadata: Metadata::new(),
        }
    }

    fn versions(events: &[RecordedEvent]) -> Vec<u64> {
        events.iter().map(|e| e.version).collect()
    }

    /// Stream `S-a` holds 600 events, `S-b` one after every 100 of them, so `S-a`'s
    /// positions have gaps and its pages run past the rows read inline.
    async fn store_of_600(dir: &tempfile::TempDir) -> SqliteStore {
        const { assert!(600 > 2 * INLINE_ROWS) };
        let store = SqliteStore::open(dir.path().join("events.db"))
            .await
            .unwrap();
        for batch in 0..6 {
            let events = (0..100).map(|i| event(batch * 100 + i)).collect();
            store
                .append("S-a", ExpectedVersion::Any, events)
                .await
                .unwrap();
            store
                .append("S-b", ExpectedVersion::Any, vec![event(batch)])
                .await
                .unwrap();
        }
        store
    }

    #[tokio::test]
    async fn pages_longer_than_the_inline_rows_read_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_of_600(&dir).await;
        let all = store.read_stream("S-a", 1, 1000).await.unwrap();
        assert_eq!(versions(&all), (1..=600).collect::<Vec<_>>());
        let payloads: Vec<String> = (0..600).map(|n| format!("{{\"n\":{n}}}")).collect();
        assert_eq!(
            all.iter().map(|e| &e.payload).collect::<Vec<_>>(),
            payloads.iter().collect::<Vec<_>>()
        );
        let middle = store.read_stream("S-a", 200, 300).await.unwrap();
        assert_eq!(versions(&middle), (200..500).collect::<Vec<_>>());
        let exact = store.read_stream("S-a", 1, INLINE_ROWS).await.unwrap();
        assert_eq!(exact.len(), INLINE_ROWS);

        let newest = store
            .read_stream_backward("S-a", u64::MAX, 400)
            .await
            .unwrap();
        assert_eq!(versions(&newest), (201..=600).rev().collect::<Vec<_>>());
        let oldest = store.read_stream_backward("S-a", 300, 1000).await.unwrap();
        assert_eq!(versions(&oldest), (1..=300).rev().collect::<Vec<_>>());

        let global = store.read_all(1, 500).await.unwrap();
        let positions: Vec<u64> = global.iter().map(|e| e.position).collect();
        assert_eq!(positions, (1..=500).collect::<Vec<_>>());
        let tail = store.read_all(100, usize::MAX).await.unwrap();
        assert_eq!(tail.len(), 606 - 99);
        assert!(tail.windows(2).all(|w| w[1].position == w[0].position + 1));
    }

    /// Appends `count` events to `stream` in batches of 100.
    async fn append_many(store: &SqliteStore, stream: &str, count: usize) {
        for start in (0..count).step_by(100) {
            let events = (start..count.min(start + 100)).map(event).collect();
            store
                .append(stream, ExpectedVersion::Any, events)
                .await
                .unwrap();
        }
    }

    fn positions(events: &[RecordedEvent]) -> Vec<u64> {
        events.iter().map(|e| e.position).collect()
    }

    #[tokio::test]
    async fn pages_read_in_two_halves_at_once_join_up_exactly() {
        const { assert!(3000 > INLINE_ROWS + 2 * PARALLEL_ROWS) };
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("events.db"))
            .await
            .unwrap();
        append_many(&store, "S-a", 3000).await;
        append_many(&store, "S-b", 500).await;
        for (from, limit) in [(1, 4096), (1, 3000), (7, 2999), (1, 1500), (2500, 4096)] {
            let read = store.read_stream("S-a", from, limit).await.unwrap();
            let end = (from + limit as u64 - 1).min(3000);
            assert_eq!(
                versions(&read),
                (from..=end).collect::<Vec<_>>(),
                "{from} {limit}"
            );
            let read = store.read_all(from, limit).await.unwrap();
            let end = (from + limit as u64 - 1).min(3500);
            assert_eq!(
                positions(&read),
                (from..=end).collect::<Vec<_>>(),
                "{from} {limit}"
            );
        }
    }

    /// Puts a row at `position` by hand, leaving a gap in the positions before it.
    fn insert_at(dir: &tempfile::TempDir, position: i64, stream: &str) {
        let conn = rusqlite::Connection::open(dir.path().join("events.db")).unwrap();
        conn.execute(
            "INSERT INTO events (position, stream_id, version, event_id, event_type, \
             schema_version, payload, metadata, recorded_at) \
             VALUES (?1, ?2, 1, ?3, 'Counted', 1, '{}', '{}', 0)",
            rusqlite::params![position, stream, Uuid::now_v7().as_bytes().as_slice()],
        )
        .unwrap();
    }

    #[tokio::test]
    async fn gaps_in_positions_never_duplicate_or_drop_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("events.db"))
            .await
            .unwrap();
        // A gap inside the low half: 300 events, one at 400, 2000 more from 401.
        append_many(&store, "S-a", 300).await;
        insert_at(&dir, 400, "S-gap");
        append_many(&store, "S-a", 2000).await;
        // A gap after the end of the dense part: one more event far ahead.
        insert_at(&dir, 9000, "S-far");
        let expected: Vec<u64> = (1..=300).chain(400..=2400).chain([9000]).collect();
        let all = store.read_all(1, 4096).await.unwrap();
        assert_eq!(positions(&all), expected);
        let some = store.read_all(1, 2000).await.unwrap();
        assert_eq!(positions(&some), expected[..2000]);
        let from_late = store.read_all(2000, 4096).await.unwrap();
        assert_eq!(
            positions(&from_late),
            (2000..=2400).chain([9000]).collect::<Vec<_>>()
        );
    }

    /// A page read ahead is used only if it came back full: one that was short may miss
    /// events committed after it was read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_read_ahead_never_miss_events_committed_since() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("events.db"))
            .await
            .unwrap();
        append_many(&store, "S-a", 3000).await;
        let page = 1500;
        assert!(page >= PARALLEL_ROWS);
        let let_read_ahead_finish = || tokio::time::sleep(std::time::Duration::from_millis(200));

        let first = store.read_all(1, page).await.unwrap();
        assert_eq!(positions(&first), (1..=1500).collect::<Vec<_>>());
        let second = store.read_all(1501, page).await.unwrap();
        assert_eq!(positions(&second), (1501..=3000).collect::<Vec<_>>());
        // The page after is read ahead now, and comes back empty.
        let_read_ahead_finish().await;
        append_many(&store, "S-b", 10).await;
        let third = store.read_all(3001, page).await.unwrap();
        assert_eq!(positions(&third), (3001..=3010).collect::<Vec<_>>());

        let whole = store.read_stream("S-a", 1, page).await.unwrap();
        assert_eq!(versions(&whole), (1..=1500).collect::<Vec<_>>());
        let rest = store.read_stream("S-a", 1501, page).await.unwrap();
        assert_eq!(versions(&rest), (1501..=3000).collect::<Vec<_>>());
        let_read_ahead_finish().await;
        let events = (0..5).map(event).collect();
        store
            .append("S-a", ExpectedVersion::Exact(3000), events)
            .await
            .unwrap();
        let after = store.read_stream("S-a", 3001, page).await.unwrap();
        assert_eq!(versions(&after), (3001..=3005).collect::<Vec<_>>());
    }

    /// Reads that borrow the writer's connection serve the appends queued meanwhile: none
    /// is left waiting (it would hang until the timeout).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_and_reads_interleaved_from_many_tasks_all_complete() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("events.db"))
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..8 {
            let store = store.clone();
            tasks.spawn(async move {
                let stream = format!("S-{task}");
                for n in 0..100u64 {
                    let read = store.read_stream(&stream, 1, 1000).await.unwrap();
                    assert_eq!(read.len() as u64, n);
                    store
                        .append(&stream, ExpectedVersion::Exact(n), vec![event(n as usize)])
                        .await
                        .unwrap();
                }
            });
        }
        let all = async {
            while let Some(joined) = tasks.join_next().await {
                joined.unwrap();
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), all)
            .await
            .expect("every append and read completed");
        for task in 0..8 {
            let version = store.stream_version(&format!("S-{task}")).await.unwrap();
            assert_eq!(version, Some(100));
        }
    }
}
