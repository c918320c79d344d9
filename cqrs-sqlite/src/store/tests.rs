//! The store's reads through paging, splitting and read-ahead, against the plain reads
//! they replace: fixed cases at the edges (gaps, the inline rows, pages read ahead) and a
//! property over any range, direction, filter and page size.

use crate::run::paging::{INLINE_ROWS, PARALLEL_ROWS};
use crate::SqliteStore;
use cqrs_core::{
    Direction, EventFilter, EventStore, ExpectedVersion, LogRead, Metadata, NewEvent, RecordedEvent,
};
use uuid::Uuid;

/// The event types events are stored under, one after the other.
const TYPES: [&str; 3] = ["Counted", "Tallied", "Noted"];

fn event(n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: TYPES[n % TYPES.len()].into(),
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
        let limit_u64 = u64::try_from(limit).unwrap();
        let end = (from + limit_u64 - 1).min(3000);
        assert_eq!(
            versions(&read),
            (from..=end).collect::<Vec<_>>(),
            "{from} {limit}"
        );
        let read = store.read_all(from, limit).await.unwrap();
        let end = (from + limit_u64 - 1).min(3500);
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
    // A visit reads pages ahead assuming no gap, and reads again where one is.
    let visited = |from, limit| {
        let store = store.clone();
        async move {
            let mut seen = Vec::new();
            store
                .visit_log(&LogRead::forward(from, limit), &mut |event| {
                    seen.push(event.position);
                    std::ops::ControlFlow::Continue(())
                })
                .await
                .unwrap();
            seen
        }
    };
    assert_eq!(visited(1, usize::MAX).await, expected);
    assert_eq!(visited(1, 2000).await, expected[..2000]);
    assert_eq!(
        visited(2000, 4096).await,
        (2000..=2400).chain([9000]).collect::<Vec<_>>()
    );
}

/// A visit reads a page ahead assuming positions without gaps; where a gap moved the page
/// before it, the page read ahead starts at the wrong position and is read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_reads_again_where_a_gap_moved_the_page_read_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db"))
        .await
        .unwrap();
    // A gap inside the first page read ahead, and several full pages after it.
    append_many(&store, "S-a", 300).await;
    insert_at(&dir, 400, "S-gap");
    append_many(&store, "S-a", 6000).await;
    let expected: Vec<u64> = (1..=300).chain(400..=6400).collect();
    let mut seen = Vec::new();
    store
        .visit_log(&LogRead::forward(1, usize::MAX), &mut |event| {
            seen.push(event.position);
            std::ops::ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert_eq!(seen, expected);
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
                assert_eq!(u64::try_from(read.len()).unwrap(), n);
                store
                    .append(
                        &stream,
                        ExpectedVersion::Exact(n),
                        vec![event(usize::try_from(n).unwrap())],
                    )
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

/// A store filled once for the property below: one long stream (`Big-1`) and short ones
/// appended between its batches (categories `A`, `B` and `Big`), so the long stream's
/// positions have gaps, plus rows put in by hand past gaps in the positions themselves
/// (category `Gap`). Event types take turns (see [`TYPES`]).
struct Filled {
    runtime: tokio::runtime::Runtime,
    store: SqliteStore,
    /// A plain connection on the same file: the reference the store is checked against.
    plain: rusqlite::Connection,
    /// The largest position stored.
    last: u64,
    _dir: tempfile::TempDir,
}

const ROUNDS: usize = 12;
const BIG_PER_ROUND: usize = 250;
/// Long enough for a page to take every path: rows read inline, the rest in two halves on
/// two connections, and the page after a full one read ahead.
const BIG: usize = ROUNDS * BIG_PER_ROUND;
const _: () = assert!(BIG > 2 * (INLINE_ROWS + PARALLEL_ROWS));
const STREAMS: [&str; 5] = ["Big-1", "A-1", "B-1", "A", "None-1"];
/// The categories filters pick from: those of [`STREAMS`] and of the rows put in by hand.
const CATEGORIES: [&str; 5] = ["Big", "A", "B", "Gap", "None"];
/// The event types filters pick from: [`TYPES`] and one never stored.
const FILTER_TYPES: [&str; 4] = ["Counted", "Tallied", "Noted", "Missing"];

impl Filled {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let store = runtime.block_on(async {
            let store = SqliteStore::open(&path).await.unwrap();
            for round in 0..ROUNDS {
                append_many(&store, "Big-1", BIG_PER_ROUND).await;
                append_many(&store, "A-1", 1 + round * 7 % 37).await;
                append_many(&store, "B-1", 20).await;
                append_many(&store, "A", round % 3).await;
                if round % 4 == 3 {
                    let next = store.read_all(1, usize::MAX).await.unwrap().len() + 100;
                    insert_at(&dir, i64::try_from(next).unwrap(), &format!("Gap-{round}"));
                }
            }
            store
        });
        let plain = rusqlite::Connection::open(&path).unwrap();
        let last: i64 = plain
            .query_row("SELECT max(position) FROM events", [], |row| row.get(0))
            .unwrap();
        Self {
            runtime,
            store,
            plain,
            last: u64::try_from(last).unwrap(),
            _dir: dir,
        }
    }

    /// What one plain `SELECT` returns for `filter`, in position order (`desc`: reversed),
    /// decoded without any of the store's code.
    fn select(
        &self,
        filter: &str,
        desc: bool,
        args: &[&dyn rusqlite::ToSql],
    ) -> Vec<RecordedEvent> {
        let sql = format!(
            "SELECT position, stream_id, version, event_id, event_type, schema_version, \
             payload, metadata, recorded_at FROM events WHERE {filter} \
             ORDER BY position {} LIMIT ?",
            if desc { "DESC" } else { "ASC" }
        );
        let mut statement = self.plain.prepare(&sql).unwrap();
        let rows = statement
            .query_map(args, |row| {
                Ok(RecordedEvent {
                    position: u64::try_from(row.get::<_, i64>(0)?).unwrap(),
                    stream_id: row.get(1)?,
                    version: u64::try_from(row.get::<_, i64>(2)?).unwrap(),
                    event_id: Uuid::from_slice(&row.get::<_, Vec<u8>>(3)?).unwrap(),
                    event_type: row.get(4)?,
                    schema_version: row.get(5)?,
                    payload: row.get(6)?,
                    metadata: serde_json::from_str(&row.get::<_, String>(7)?).unwrap(),
                    recorded_at: chrono::DateTime::from_timestamp_micros(row.get(8)?).unwrap(),
                })
            })
            .unwrap();
        rows.map(Result::unwrap).collect()
    }
}

/// A bound as SQLite's integer: past the largest one means "no bound".
fn sql_bound<T>(value: T) -> i64
where
    i64: TryFrom<T>,
{
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// One read the property checks.
#[derive(Debug, Clone)]
enum Read {
    /// `read_log` of one page.
    Log(LogRead),
    /// `read_stream(stream, from, limit)`.
    Stream {
        stream: &'static str,
        from: u64,
        limit: usize,
    },
    /// `read_stream_backward(stream, from, limit)`.
    Backward {
        stream: &'static str,
        from: u64,
        limit: usize,
    },
    /// `read_log` page after page, each from one past the last event read, as a
    /// subscription catching up (forward) or a browser going back in time does.
    LogPages(LogRead),
    /// `read_stream` page after page from `from`, as a replay does.
    StreamPages {
        stream: &'static str,
        from: u64,
        page: usize,
    },
}

/// Filters of every shape: none (most often), categories, types, or both, one entry or
/// several.
fn filters() -> impl proptest::strategy::Strategy<Value = EventFilter> {
    use proptest::prelude::*;
    let categories = proptest::sample::subsequence(&CATEGORIES[..], 1..=3);
    let types = proptest::sample::subsequence(&FILTER_TYPES[..], 1..=2);
    prop_oneof![
        3 => Just(EventFilter::all()),
        2 => categories.clone().prop_map(|c| EventFilter::all().with_categories(c)),
        1 => types.clone().prop_map(|t| EventFilter::all().with_event_types(t)),
        1 => (categories, types)
            .prop_map(|(c, t)| EventFilter::all().with_categories(c).with_event_types(t)),
    ]
}

fn reads(last: u64) -> impl proptest::strategy::Strategy<Value = Read> {
    use proptest::prelude::*;
    let from = prop_oneof![
        8 => 0..=last + 100,
        1 => Just(u64::MAX),
    ];
    // A few long sizes drawn often, so that a case regularly asks for a page as long as
    // one read ahead for an earlier case, but elsewhere: that page must not be used.
    let long =
        proptest::sample::select(vec![PARALLEL_ROWS, PARALLEL_ROWS + 300, 2 * PARALLEL_ROWS]);
    let limit = prop_oneof![
        3 => 1..=INLINE_ROWS + 10,
        3 => INLINE_ROWS..=2 * (INLINE_ROWS + PARALLEL_ROWS) + 100,
        3 => long.clone(),
        1 => Just(BIG + 1000),
        1 => Just(usize::MAX),
    ];
    let page = prop_oneof![
        INLINE_ROWS..=700,
        PARALLEL_ROWS..=2 * PARALLEL_ROWS + 500,
        long,
    ];
    let direction = prop_oneof![3 => Just(Direction::Forward), 1 => Just(Direction::Backward)];
    let log_read = |from: BoxedStrategy<u64>, limit: BoxedStrategy<usize>| {
        (from, direction.clone(), limit, filters()).prop_map(|(from, direction, limit, filter)| {
            LogRead {
                from,
                direction,
                limit,
                filter,
            }
        })
    };
    let stream = proptest::sample::select(&STREAMS[..]);
    prop_oneof![
        log_read(from.clone().boxed(), limit.clone().boxed()).prop_map(Read::Log),
        (stream.clone(), from.clone(), limit.clone()).prop_map(|(stream, from, limit)| {
            Read::Stream {
                stream,
                from,
                limit,
            }
        }),
        (stream.clone(), from.clone(), limit).prop_map(|(stream, from, limit)| Read::Backward {
            stream,
            from,
            limit
        }),
        log_read(
            prop_oneof![4 => 0..=last + 10, 1 => Just(u64::MAX)].boxed(),
            page.clone().boxed()
        )
        .prop_map(Read::LogPages),
        (stream, 0..=u64::try_from(BIG).unwrap(), page)
            .prop_map(|(stream, from, page)| Read::StreamPages { stream, from, page }),
    ]
}

impl Filled {
    /// What one plain `SELECT` returns for `read`, whatever its limit: every event from
    /// `read.from` on in its direction, kept or left by [`EventFilter::matches`] (the
    /// reference semantics), then cut to the limit.
    fn select_log(&self, read: &LogRead) -> Vec<RecordedEvent> {
        let (bound, desc) = match read.direction {
            Direction::Forward => ("position >= ?", false),
            Direction::Backward => ("position <= ?", true),
        };
        let mut events = self.select(bound, desc, &[&sql_bound(read.from), &-1]);
        events.retain(|e| read.filter.matches(&e.stream_id, &e.event_type));
        events.truncate(read.limit);
        events
    }

    /// What the store returns for `read`, and what plain `SELECT`s return for it.
    fn both(&self, read: &Read) -> (Vec<RecordedEvent>, Vec<RecordedEvent>) {
        let store = &self.store;
        match read {
            Read::Log(read) => (
                self.runtime.block_on(store.read_log(read)).unwrap(),
                self.select_log(read),
            ),
            &Read::Stream {
                stream,
                from,
                limit,
            } => (
                self.runtime
                    .block_on(store.read_stream(stream, from, limit))
                    .unwrap(),
                self.select(
                    "stream_id = ? AND version >= ?",
                    false,
                    &[&stream, &sql_bound(from), &sql_bound(limit)],
                ),
            ),
            &Read::Backward {
                stream,
                from,
                limit,
            } => (
                self.runtime
                    .block_on(store.read_stream_backward(stream, from, limit))
                    .unwrap(),
                self.select(
                    "stream_id = ? AND version <= ?",
                    true,
                    &[&stream, &sql_bound(from), &sql_bound(limit)],
                ),
            ),
            Read::LogPages(whole) => {
                let mut read = Vec::new();
                let mut next = whole.clone();
                loop {
                    let events = self.runtime.block_on(store.read_log(&next)).unwrap();
                    assert_eq!(
                        events,
                        self.select_log(&next),
                        "the page from position {}",
                        next.from
                    );
                    let Some(last) = events.last() else { break };
                    let from = match next.direction {
                        Direction::Forward => last.position + 1,
                        Direction::Backward => last.position - 1,
                    };
                    let full = events.len() == next.limit;
                    read.extend(events);
                    if !full || from == 0 {
                        break;
                    }
                    next.from = from;
                }
                let everything = LogRead {
                    limit: usize::MAX,
                    ..whole.clone()
                };
                (read, self.select_log(&everything))
            }
            &Read::StreamPages { stream, from, page } => {
                let mut read = Vec::new();
                let mut next = from;
                loop {
                    let events = self
                        .runtime
                        .block_on(store.read_stream(stream, next, page))
                        .unwrap();
                    let Some(last) = events.last() else { break };
                    next = last.version + 1;
                    let full = events.len() == page;
                    read.extend(events);
                    if !full {
                        break;
                    }
                }
                let whole = self.select(
                    "stream_id = ? AND version >= ?",
                    false,
                    &[&stream, &sql_bound(from), &-1],
                );
                (read, whole)
            }
        }
    }
}

/// However a read is paged, split over threads or read ahead, it returns exactly the events
/// one plain `SELECT ... ORDER BY position` returns (for the log: filtered by the reference
/// `EventFilter::matches`), for any range, direction, filter and page size.
#[test]
fn paged_parallel_reads_return_exactly_what_one_select_returns() {
    use proptest::test_runner::{Config, TestRunner};
    let filled = Filled::new();
    assert!(filled.last > u64::try_from(BIG).unwrap());
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&reads(filled.last), |read| {
            let (store, plain) = filled.both(&read);
            proptest::prop_assert_eq!(store, plain, "{:?}", read);
            Ok(())
        })
        .unwrap();
}
