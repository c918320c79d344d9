//! The store's reads through paging, splitting and read-ahead, against the plain reads
//! they replace: fixed cases at the edges (gaps, the inline rows, pages read ahead) and a
//! property over any range and page size.

use crate::run::paging::{INLINE_ROWS, PARALLEL_ROWS};
use crate::SqliteStore;
use cqrs_core::{EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent};
use uuid::Uuid;

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
