//! The store contract as code: public async checks that every backend's tests call.
//!
//! Each check takes a store, runs against streams of its own and panics with a message
//! when the backend breaks the contract. Checks whose names end in `_on_empty_store` read
//! the global log from its start and need a store nobody else writes to. The
//! [`store_conformance_tests!`](crate::store_conformance_tests) macro turns the whole suite
//! into one `#[tokio::test]` per check, each on a fresh store:
//!
//! ```ignore
//! cqrs_core::store_conformance_tests!(async { std::sync::Arc::new(MemoryStore::new()) });
//! ```

use crate::backend::recorded_now;
use crate::envelope::{NewEvent, RecordedEvent};
use crate::metadata::Metadata;
use crate::snapshot::{Snapshot, SnapshotStore};
use crate::store::{EventStore, ExpectedVersion, StoreError};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// Writers per concurrency check.
const WRITERS: usize = 8;
/// Events each writer appends in a concurrency check.
const EVENTS_PER_WRITER: usize = 20;

fn new_stream() -> String {
    format!("conformance-{}", Uuid::new_v4())
}

fn event(tag: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "Tagged".to_owned(),
        schema_version: 1,
        payload: format!("{{\"tag\":\"{tag}\"}}"),
        metadata: Metadata::new(),
    }
}

fn events(prefix: &str, count: usize) -> Vec<NewEvent> {
    (0..count).map(|i| event(&format!("{prefix}{i}"))).collect()
}

async fn read_whole_stream<S: EventStore>(store: &S, stream: &str) -> Vec<RecordedEvent> {
    store
        .read_stream(stream, 1, usize::MAX)
        .await
        .expect("read_stream failed")
}

async fn read_whole_log<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    store
        .read_all(1, usize::MAX)
        .await
        .expect("read_all failed")
}

fn assert_conflict(result: Result<crate::Appended, StoreError>, stream: &str, actual: Option<u64>) {
    match result {
        Err(StoreError::WrongExpectedVersion {
            stream_id,
            actual: reported,
            ..
        }) => {
            assert_eq!(stream_id, stream, "the conflict names another stream");
            assert_eq!(
                reported, actual,
                "the conflict reports a wrong actual version"
            );
        }
        other => panic!("expected WrongExpectedVersion on {stream}, got {other:?}"),
    }
}

fn assert_same_event(stored: &RecordedEvent, written: &NewEvent) {
    assert_eq!(stored.event_id, written.event_id);
    assert_eq!(stored.event_type, written.event_type);
    assert_eq!(stored.schema_version, written.schema_version);
    assert_eq!(stored.payload, written.payload, "payload changed");
    assert_eq!(stored.metadata, written.metadata, "metadata changed");
}

/// Appended events read back whole, versioned from 1, as the append reported them.
pub async fn append_then_read_back<S: EventStore>(store: &S) {
    let stream = new_stream();
    let written = events("a", 3);
    let appended = store
        .append(&stream, ExpectedVersion::NoStream, written.clone())
        .await
        .expect("append failed");
    assert_eq!(appended.version, 3);
    let read = read_whole_stream(store, &stream).await;
    assert_eq!(
        read, appended.events,
        "read back differs from what append returned"
    );
    for (i, (stored, new)) in read.iter().zip(&written).enumerate() {
        assert_same_event(stored, new);
        assert_eq!(stored.stream_id, stream);
        assert_eq!(stored.version, i as u64 + 1);
    }
    assert!(read.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(3));
}

/// `Any` appends to new and existing streams alike.
pub async fn expected_version_any<S: EventStore>(store: &S) {
    let stream = new_stream();
    let first = store
        .append(&stream, ExpectedVersion::Any, events("a", 2))
        .await;
    assert_eq!(first.expect("Any on a new stream").version, 2);
    let second = store
        .append(&stream, ExpectedVersion::Any, events("b", 1))
        .await;
    assert_eq!(second.expect("Any on an existing stream").version, 3);
}

/// `NoStream` appends only to a stream never written.
pub async fn expected_version_no_stream<S: EventStore>(store: &S) {
    let stream = new_stream();
    store
        .append(&stream, ExpectedVersion::NoStream, events("a", 1))
        .await
        .expect("NoStream on a new stream");
    let again = store
        .append(&stream, ExpectedVersion::NoStream, events("b", 1))
        .await;
    assert_conflict(again, &stream, Some(1));
    assert_eq!(read_whole_stream(store, &stream).await.len(), 1);
}

/// `StreamExists` appends only to a stream with events.
pub async fn expected_version_stream_exists<S: EventStore>(store: &S) {
    let stream = new_stream();
    let refused = store
        .append(&stream, ExpectedVersion::StreamExists, events("a", 1))
        .await;
    assert_conflict(refused, &stream, None);
    assert_eq!(store.stream_version(&stream).await.unwrap(), None);
    store
        .append(&stream, ExpectedVersion::Any, events("b", 1))
        .await
        .unwrap();
    let appended = store
        .append(&stream, ExpectedVersion::StreamExists, events("c", 2))
        .await
        .expect("StreamExists on an existing stream");
    assert_eq!(appended.version, 3);
}

/// `Exact(n)` appends only at version `n`; `Exact(0)` means a new stream.
pub async fn expected_version_exact<S: EventStore>(store: &S) {
    let stream = new_stream();
    let ahead = store
        .append(&stream, ExpectedVersion::Exact(1), events("a", 1))
        .await;
    assert_conflict(ahead, &stream, None);
    store
        .append(&stream, ExpectedVersion::Exact(0), events("b", 2))
        .await
        .expect("Exact(0) on a new stream");
    let zero_again = store
        .append(&stream, ExpectedVersion::Exact(0), events("c", 1))
        .await;
    assert_conflict(zero_again, &stream, Some(2));
    let stale = store
        .append(&stream, ExpectedVersion::Exact(1), events("d", 1))
        .await;
    assert_conflict(stale, &stream, Some(2));
    let too_far = store
        .append(&stream, ExpectedVersion::Exact(3), events("e", 1))
        .await;
    assert_conflict(too_far, &stream, Some(2));
    let appended = store
        .append(&stream, ExpectedVersion::Exact(2), events("f", 1))
        .await
        .expect("Exact(current)");
    assert_eq!(appended.version, 3);
    assert_eq!(read_whole_stream(store, &stream).await.len(), 3);
}

/// Two writers that read the same version: the first append wins, the second conflicts
/// and leaves the stream as the first left it, for every expected-version variant that
/// can conflict.
pub async fn concurrently_changed_stream_conflicts<S: EventStore>(store: &S) {
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(0),
        ExpectedVersion::Exact(2),
    ] {
        let stream = new_stream();
        if expected == ExpectedVersion::Exact(2) {
            store
                .append(&stream, ExpectedVersion::Any, events("setup", 2))
                .await
                .unwrap();
        }
        let winner = store
            .append(&stream, expected, events("winner", 1))
            .await
            .expect("the first writer wins");
        let loser = store.append(&stream, expected, events("loser", 3)).await;
        assert_conflict(loser, &stream, Some(winner.version));
        let read = read_whole_stream(store, &stream).await;
        assert_eq!(read.len() as u64, winner.version);
        assert_eq!(read.last(), winner.events.last());
    }
}

/// A batch that fails part way leaves the stream and the global log as they were.
pub async fn failed_batches_change_nothing<S: EventStore>(store: &S) {
    let taken = event("taken");
    let taken_id = taken.event_id;
    store
        .append(&new_stream(), ExpectedVersion::Any, vec![taken])
        .await
        .unwrap();
    let stream = new_stream();
    store
        .append(&stream, ExpectedVersion::Any, events("kept", 2))
        .await
        .unwrap();
    let log_before = read_whole_log(store).await;

    let mut batch = events("lost", 3);
    batch[2].event_id = taken_id;
    match store
        .append(&stream, ExpectedVersion::Exact(2), batch)
        .await
    {
        Err(StoreError::DuplicateEventId {
            event_id,
            stream_id,
        }) => {
            assert_eq!(event_id, taken_id);
            assert_eq!(stream_id, stream);
        }
        other => panic!("expected DuplicateEventId, got {other:?}"),
    }
    let mut batch = events("twice", 3);
    batch[1].event_id = batch[0].event_id;
    let twice = store
        .append(&stream, ExpectedVersion::Exact(2), batch)
        .await;
    assert!(
        matches!(twice, Err(StoreError::DuplicateEventId { .. })),
        "an id twice in one batch must be refused, got {twice:?}"
    );

    assert_eq!(
        read_whole_log(store).await,
        log_before,
        "the global log changed"
    );
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(2));
    let after = store
        .append(&stream, ExpectedVersion::Exact(2), events("next", 1))
        .await
        .expect("the stream accepts appends after a failed batch");
    assert_eq!(after.events[0].version, 3);
}

/// An event id is unique across the store, and the expected version is checked first.
pub async fn duplicate_event_ids_are_refused<S: EventStore>(store: &S) {
    let stream = new_stream();
    let first = event("first");
    store
        .append(&stream, ExpectedVersion::Any, vec![first.clone()])
        .await
        .unwrap();
    for target in [stream.clone(), new_stream()] {
        let again = store
            .append(&target, ExpectedVersion::Any, vec![first.clone()])
            .await;
        assert!(
            matches!(again, Err(StoreError::DuplicateEventId { event_id, .. }) if event_id == first.event_id),
            "re-appending an id must be refused, got {again:?}"
        );
    }
    let both_wrong = store
        .append(&stream, ExpectedVersion::Exact(7), vec![first.clone()])
        .await;
    assert_conflict(both_wrong, &stream, Some(1));
    assert_eq!(store.stream_version(&stream).await.unwrap(), Some(1));
}

/// An empty batch appends nothing, creates no stream, and is still checked.
pub async fn empty_appends_append_nothing<S: EventStore>(store: &S) {
    let stream = new_stream();
    let appended = store
        .append(&stream, ExpectedVersion::NoStream, Vec::new())
        .await
        .expect("an empty append is allowed");
    assert_eq!(appended.version, 0);
    assert!(appended.events.is_empty());
    assert_eq!(store.stream_version(&stream).await.unwrap(), None);
    let refused = store
        .append(&stream, ExpectedVersion::StreamExists, Vec::new())
        .await;
    assert_conflict(refused, &stream, None);
    store
        .append(&stream, ExpectedVersion::Any, events("a", 2))
        .await
        .unwrap();
    let appended = store
        .append(&stream, ExpectedVersion::Exact(2), Vec::new())
        .await
        .expect("an empty append at the right version");
    assert_eq!(appended.version, 2);
    let refused = store
        .append(&stream, ExpectedVersion::Exact(1), Vec::new())
        .await;
    assert_conflict(refused, &stream, Some(2));
    assert_eq!(read_whole_stream(store, &stream).await.len(), 2);
}

/// Streams do not see each other's events or versions, even when one name prefixes another.
pub async fn streams_are_isolated<S: EventStore>(store: &S) {
    let a = new_stream();
    let b = format!("{a}0");
    for round in 0..3 {
        store
            .append(&a, ExpectedVersion::Exact(round), events("a", 1))
            .await
            .unwrap();
        store
            .append(&b, ExpectedVersion::Exact(round * 2), events("b", 2))
            .await
            .unwrap();
    }
    let read_a = read_whole_stream(store, &a).await;
    let read_b = read_whole_stream(store, &b).await;
    assert!(read_a
        .iter()
        .all(|e| e.stream_id == a && e.payload.contains("\"a")));
    assert!(read_b
        .iter()
        .all(|e| e.stream_id == b && e.payload.contains("\"b")));
    assert_eq!(
        read_a.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(read_b.len(), 6);
    assert_eq!(store.stream_version(&a).await.unwrap(), Some(3));
    assert_eq!(store.stream_version(&b).await.unwrap(), Some(6));
}

/// Unknown streams read as empty; ids no backend can store are a typed error.
pub async fn unknown_streams_and_invalid_ids<S: EventStore>(store: &S) {
    let unknown = new_stream();
    assert!(read_whole_stream(store, &unknown).await.is_empty());
    assert!(store
        .read_stream_backward(&unknown, u64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.stream_version(&unknown).await.unwrap(), None);
    for bad in ["", "nul\0inside"] {
        let refused = store
            .append(bad, ExpectedVersion::Any, events("x", 1))
            .await;
        assert!(
            matches!(refused, Err(StoreError::InvalidStreamId { .. })),
            "stream id {bad:?} must be refused, got {refused:?}"
        );
    }
}

fn versions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

/// Forward and backward paging of one stream, at and past both ends.
pub async fn stream_paging<S: EventStore>(store: &S) {
    let stream = new_stream();
    store
        .append(&stream, ExpectedVersion::NoStream, events("p", 10))
        .await
        .unwrap();
    let page = |from, limit| store.read_stream(&stream, from, limit);
    assert_eq!(versions(&page(1, 3).await.unwrap()), [1, 2, 3]);
    assert_eq!(versions(&page(4, 3).await.unwrap()), [4, 5, 6]);
    assert_eq!(versions(&page(9, 5).await.unwrap()), [9, 10]);
    assert_eq!(versions(&page(10, 1).await.unwrap()), [10]);
    assert_eq!(
        versions(&page(0, 2).await.unwrap()),
        [1, 2],
        "from 0 reads from the start"
    );
    assert!(
        page(11, 5).await.unwrap().is_empty(),
        "past the end reads empty"
    );
    assert!(page(u64::MAX, 5).await.unwrap().is_empty());
    assert_eq!(page(1, usize::MAX).await.unwrap().len(), 10);

    let back = |from, limit| store.read_stream_backward(&stream, from, limit);
    assert_eq!(versions(&back(u64::MAX, 3).await.unwrap()), [10, 9, 8]);
    assert_eq!(versions(&back(10, 2).await.unwrap()), [10, 9]);
    assert_eq!(versions(&back(2, 5).await.unwrap()), [2, 1]);
    assert_eq!(versions(&back(1, 1).await.unwrap()), [1]);
    assert!(back(0, 5).await.unwrap().is_empty());
}

/// A read limit of 0 is an invalid argument on every read, never an empty page (which a
/// pager would take for the end).
pub async fn a_read_limit_of_zero_is_an_invalid_argument<S: EventStore>(store: &S) {
    let stream = new_stream();
    store
        .append(&stream, ExpectedVersion::NoStream, events("z", 2))
        .await
        .unwrap();
    let reads = [
        ("read_stream", store.read_stream(&stream, 1, 0).await),
        (
            "read_stream_backward",
            store.read_stream_backward(&stream, u64::MAX, 0).await,
        ),
        ("read_all", store.read_all(1, 0).await),
    ];
    for (read, result) in reads {
        match result {
            Err(StoreError::InvalidArgument { argument, .. }) => {
                assert_eq!(argument, "limit", "{read} names another argument");
            }
            other => panic!("{read} with limit 0: expected InvalidArgument, got {other:?}"),
        }
    }
}

/// Paging the global log with `from`/`limit` at and past the ends gives every event once,
/// in commit order.
pub async fn global_paging_on_empty_store<S: EventStore>(store: &S) {
    assert!(
        read_whole_log(store).await.is_empty(),
        "needs an empty store"
    );
    let (a, b) = (new_stream(), new_stream());
    let mut committed = Vec::new();
    for (stream, count) in [(&a, 3), (&b, 2), (&a, 4), (&b, 1)] {
        let appended = store
            .append(stream, ExpectedVersion::Any, events("g", count))
            .await
            .unwrap();
        committed.extend(appended.events);
    }
    let all = read_whole_log(store).await;
    assert_eq!(all, committed, "read_all differs from commit order");
    let first = all[0].position;
    let last = all[all.len() - 1].position;

    let mut paged = Vec::new();
    let mut from = 0;
    loop {
        let page = store.read_all(from, 3).await.unwrap();
        assert!(page.len() <= 3);
        let Some(tail) = page.last() else { break };
        from = tail.position + 1;
        paged.extend(page);
    }
    assert_eq!(paged, all, "paging in threes differs from one read");
    let at_last = store.read_all(last, 10).await.unwrap();
    assert_eq!(at_last.len(), 1, "from the last position reads exactly it");
    assert!(store.read_all(last + 1, 10).await.unwrap().is_empty());
    assert!(store.read_all(u64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(
        store.read_all(first + 2, 2).await.unwrap(),
        all[2..4].to_vec()
    );
}

/// Positions strictly increase in commit order; in a single-writer backend (memory,
/// SQLite) they also run 1, 2, 3, ... without gaps, failed appends included.
pub async fn positions_are_gap_free_on_empty_store<S: EventStore>(store: &S) {
    assert!(
        read_whole_log(store).await.is_empty(),
        "needs an empty store"
    );
    let stream = new_stream();
    let mut last = 0;
    for round in 0..5u64 {
        let appended = store
            .append(&stream, ExpectedVersion::Exact(round * 2), events("q", 2))
            .await
            .unwrap();
        for event in &appended.events {
            assert!(
                event.position > last,
                "positions must increase in commit order"
            );
            last = event.position;
        }
        let refused = store
            .append(&stream, ExpectedVersion::NoStream, events("r", 2))
            .await;
        assert!(refused.is_err());
    }
    let positions: Vec<u64> = read_whole_log(store)
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions, (1..=10).collect::<Vec<_>>());
}

/// Metadata and unicode payloads come back byte for byte, through every read.
pub async fn metadata_and_unicode_round_trip<S: EventStore>(store: &S) {
    let stream = new_stream();
    let payloads = [
        r#"{"text":"日本語 ✓ émoji 🚀 \"quoted\" \\ back\nslash","n":12345678901234567890}"#,
        "{ \"spaced\" : [ 1 , 2.50 , -0.0 ] }",
        r#""just a string""#,
        "null",
    ];
    let mut custom = BTreeMap::new();
    custom.insert("tenant".to_owned(), "ÅÄÖ-株式会社".to_owned());
    custom.insert("empty".to_owned(), String::new());
    custom.insert("json-ish".to_owned(), "{\"not\":\"parsed\"}".to_owned());
    let metadata = Metadata {
        correlation_id: Some(Uuid::new_v4()),
        causation_id: Some(Uuid::new_v4()),
        custom,
    };
    let written: Vec<NewEvent> = payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| NewEvent {
            event_id: Uuid::new_v4(),
            event_type: format!("Typé{i}"),
            schema_version: 7,
            payload: (*payload).to_owned(),
            metadata: if i == 3 {
                Metadata::new()
            } else {
                metadata.clone()
            },
        })
        .collect();
    let appended = store
        .append(&stream, ExpectedVersion::Any, written.clone())
        .await
        .unwrap();
    let read = read_whole_stream(store, &stream).await;
    let from_log = store
        .read_all(appended.events[0].position, written.len())
        .await
        .unwrap();
    for stored in [&appended.events, &read, &from_log] {
        assert_eq!(stored.len(), written.len());
        for (stored, new) in stored.iter().zip(&written) {
            assert_same_event(stored, new);
        }
    }
}

/// Timestamps are UTC at microsecond precision, taken at commit, and read back unchanged.
pub async fn timestamps_have_microsecond_precision<S: EventStore>(store: &S) {
    let stream = new_stream();
    let before = recorded_now();
    let appended = store
        .append(&stream, ExpectedVersion::Any, events("t", 2))
        .await
        .unwrap();
    let after = recorded_now();
    let read = read_whole_stream(store, &stream).await;
    for (stored, returned) in read.iter().zip(&appended.events) {
        assert_eq!(stored.recorded_at, returned.recorded_at);
        assert!(
            before <= stored.recorded_at && stored.recorded_at <= after,
            "recorded_at {} is not between {before} and {after}",
            stored.recorded_at
        );
        assert_eq!(
            stored.recorded_at.timestamp_subsec_nanos() % 1_000,
            0,
            "finer than microseconds cannot be kept by every backend"
        );
    }
}

/// Runs `work(i)` on `count` OS threads at once, each with its own runtime, and collects
/// the results in thread order.
fn run_on_threads<T, F, Fut>(count: usize, work: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> Fut + Sync,
    Fut: std::future::Future<Output = T>,
{
    let barrier = std::sync::Barrier::new(count);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .map(|i| {
                let (work, barrier) = (&work, &barrier);
                scope.spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime for a writer thread");
                    barrier.wait();
                    runtime.block_on(work(i))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a writer thread panicked"))
            .collect()
    })
}

/// Many writers racing on one stream: exactly one wins each version, no event is lost or
/// duplicated, and versions run without gaps.
pub async fn concurrent_writers_on_one_stream<S: EventStore>(store: &S) {
    let stream = new_stream();
    let won: Vec<Vec<(u64, Uuid)>> = run_on_threads(WRITERS, |writer| {
        let stream = stream.clone();
        async move {
            let mut won = Vec::new();
            while won.len() < EVENTS_PER_WRITER {
                let version = store.stream_version(&stream).await.unwrap().unwrap_or(0);
                let new = event(&format!("w{writer}"));
                let id = new.event_id;
                match store
                    .append(&stream, ExpectedVersion::Exact(version), vec![new])
                    .await
                {
                    Ok(appended) => {
                        assert_eq!(appended.version, version + 1);
                        won.push((appended.version, id));
                    }
                    Err(StoreError::WrongExpectedVersion { .. }) => {}
                    Err(other) => panic!("writer {writer} failed: {other}"),
                }
            }
            won
        }
    });
    let total = (WRITERS * EVENTS_PER_WRITER) as u64;
    let read = read_whole_stream(store, &stream).await;
    assert_eq!(versions(&read), (1..=total).collect::<Vec<_>>());
    let mut winners: Vec<(u64, Uuid)> = won.into_iter().flatten().collect();
    winners.sort();
    let stored: Vec<(u64, Uuid)> = read.iter().map(|e| (e.version, e.event_id)).collect();
    assert_eq!(
        winners, stored,
        "each version has exactly the event of its one winner"
    );
    let ids: HashSet<Uuid> = read.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), read.len(), "an event is stored twice");
}

/// Many writers on streams of their own all succeed, and the global log orders each
/// stream's events by version.
pub async fn concurrent_writers_on_many_streams<S: EventStore>(store: &S) {
    let prefix = new_stream();
    let written: Vec<Vec<Uuid>> = run_on_threads(WRITERS, |writer| {
        let stream = format!("{prefix}-{writer}");
        async move {
            let mut ids = Vec::new();
            for version in 0..EVENTS_PER_WRITER as u64 {
                let new = event("m");
                ids.push(new.event_id);
                store
                    .append(&stream, ExpectedVersion::Exact(version), vec![new])
                    .await
                    .unwrap_or_else(|e| panic!("writer {writer} was refused: {e}"));
            }
            ids
        }
    });
    let mut log = Vec::new();
    let mut from = 1;
    loop {
        let page = store.read_all(from, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        log.extend(
            page.into_iter()
                .filter(|e| e.stream_id.starts_with(&prefix)),
        );
    }
    assert_eq!(log.len(), WRITERS * EVENTS_PER_WRITER);
    for (writer, ids) in written.iter().enumerate() {
        let stream = format!("{prefix}-{writer}");
        let in_log: Vec<(u64, Uuid)> = log
            .iter()
            .filter(|e| e.stream_id == stream)
            .map(|e| (e.version, e.event_id))
            .collect();
        let expected: Vec<(u64, Uuid)> = (1..).zip(ids.iter().copied()).collect();
        assert_eq!(in_log, expected, "stream {stream} in global order");
    }
}

/// A snapshot store keeps the latest snapshot per stream, byte for byte, and never lets an
/// older one replace a newer.
pub async fn snapshots_keep_the_latest<S: SnapshotStore>(store: &S) {
    let stream = new_stream();
    assert_eq!(store.load_snapshot(&stream).await.unwrap(), None);
    let snapshot = |version: u64, state: &str| Snapshot {
        stream_id: stream.clone(),
        version,
        state_version: 3,
        state: state.to_owned(),
        taken_at: recorded_now(),
    };
    let fifth = snapshot(
        5,
        r#"{"lines":["日本語 🚀","\"q\""],"n":12345678901234567890}"#,
    );
    store.save_snapshot(fifth.clone()).await.unwrap();
    assert_eq!(
        store.load_snapshot(&stream).await.unwrap(),
        Some(fifth.clone())
    );
    store.save_snapshot(snapshot(3, "{}")).await.unwrap();
    assert_eq!(
        store.load_snapshot(&stream).await.unwrap(),
        Some(fifth),
        "an older snapshot replaced a newer one"
    );
    let eighth = snapshot(8, "{\"n\":8}");
    store.save_snapshot(eighth.clone()).await.unwrap();
    assert_eq!(store.load_snapshot(&stream).await.unwrap(), Some(eighth));
    assert_eq!(store.load_snapshot(&new_stream()).await.unwrap(), None);
}

/// One `#[tokio::test]` per snapshot-store check, each on a fresh store (see
/// [`store_conformance_tests!`](crate::store_conformance_tests)).
#[macro_export]
macro_rules! snapshot_store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@each $make; snapshots_keep_the_latest,);
    };
}

/// One `#[tokio::test]` per conformance check, each on a fresh store made by `$make`, an
/// async expression whose value derefs to the store (an `Arc<Store>`, or a guard that also
/// keeps a temporary directory alive).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@each $make;
            append_then_read_back,
            expected_version_any,
            expected_version_no_stream,
            expected_version_stream_exists,
            expected_version_exact,
            concurrently_changed_stream_conflicts,
            failed_batches_change_nothing,
            duplicate_event_ids_are_refused,
            empty_appends_append_nothing,
            streams_are_isolated,
            unknown_streams_and_invalid_ids,
            stream_paging,
            a_read_limit_of_zero_is_an_invalid_argument,
            global_paging_on_empty_store,
            positions_are_gap_free_on_empty_store,
            metadata_and_unicode_round_trip,
            timestamps_have_microsecond_precision,
            concurrent_writers_on_one_stream,
            concurrent_writers_on_many_streams,
        );
    };
    (@each $make:expr; $($check:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fixture = $make.await;
                $crate::testing::conformance::$check(&*fixture).await;
            }
        )*
    };
}
