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
use crate::log::{Direction, EventFilter, LogRead};
use crate::metadata::Metadata;
use crate::parking::{ParkedEvent, ParkingStore};
use crate::snapshot::{Snapshot, SnapshotStore};
use crate::store::{EventStore, ExpectedVersion, StoreError};
use crate::subscription::CheckpointStore;
use crate::testing::toy::tagged_event;
use crate::tracking::{AppendBatch, TrackingStore};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;
use uuid::Uuid;

/// Writers per concurrency check.
const WRITERS: usize = 8;
/// Events each writer appends in a concurrency check.
const EVENTS_PER_WRITER: usize = 20;

fn new_stream() -> String {
    format!("conformance-{}", Uuid::new_v4())
}

fn events(prefix: &str, count: usize) -> Vec<NewEvent> {
    (0..count)
        .map(|i| tagged_event(&format!("{prefix}{i}")))
        .collect()
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
    let taken = tagged_event("taken");
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
    let first = tagged_event("first");
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

/// What a visit was handed, owned (a visit carries no metadata: compared without it).
fn without_metadata(events: Vec<RecordedEvent>) -> Vec<RecordedEvent> {
    events
        .into_iter()
        .map(|event| RecordedEvent {
            metadata: Metadata::new(),
            ..event
        })
        .collect()
}

/// What `visit_stream` hands over, owned.
async fn visit_stream<S: EventStore>(
    store: &S,
    stream: &str,
    from: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut seen = Vec::new();
    let visited = store
        .visit_stream(stream, from, limit, &mut |event| {
            seen.push(event.to_recorded(Metadata::new()));
            ControlFlow::Continue(())
        })
        .await?;
    assert_eq!(
        visited,
        seen.len(),
        "visit_stream miscounted what it visited"
    );
    Ok(seen)
}

/// What `visit_log` hands over, owned.
async fn visit_log<S: EventStore>(store: &S, read: &LogRead) -> Vec<RecordedEvent> {
    let mut seen = Vec::new();
    let visited = store
        .visit_log(read, &mut |event| {
            seen.push(event.to_recorded(Metadata::new()));
            ControlFlow::Continue(())
        })
        .await
        .expect("visit_log failed");
    assert_eq!(visited, seen.len(), "visit_log miscounted what it visited");
    seen
}

/// Visits hand over exactly what the reads return (but the metadata), over pages longer
/// than a backend reads at once, and stop where the visitor breaks.
pub async fn visits_hand_over_what_reads_return<S: EventStore>(store: &S) {
    const EVENTS: usize = 600;
    let stream = new_stream();
    store
        .append(&stream, ExpectedVersion::NoStream, events("v", EVENTS))
        .await
        .unwrap();
    for (from, limit) in [
        (1, usize::MAX),
        (0, 3),
        (250, 300),
        (599, 10),
        (601, 5),
        (u64::MAX, 5),
    ] {
        let read = store.read_stream(&stream, from, limit).await.unwrap();
        let visited = visit_stream(store, &stream, from, limit).await.unwrap();
        assert_eq!(
            visited,
            without_metadata(read),
            "visit_stream from {from}, limit {limit}"
        );
    }
    assert!(visit_stream(store, &new_stream(), 1, 10)
        .await
        .unwrap()
        .is_empty());
    assert_invalid(visit_stream(store, &stream, 1, 0).await, "limit");

    let mut seen = 0;
    let visited = store
        .visit_stream(&stream, 1, usize::MAX, &mut |_| {
            seen += 1;
            if seen == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await
        .unwrap();
    assert_eq!((visited, seen), (3, 3), "a visit goes on after Break");

    let whole = read_whole_stream(store, &stream).await;
    let (first, last) = (whole[0].position, whole[EVENTS - 1].position);
    let category = crate::category(&stream).to_owned();
    let reads = [
        LogRead::forward(first, EVENTS),
        LogRead::backward(last, 7),
        LogRead {
            filter: EventFilter::all().with_categories([category.clone()]),
            ..LogRead::forward(first, EVENTS)
        },
        LogRead {
            filter: EventFilter::all().with_categories([category]),
            ..LogRead::backward(u64::MAX, 9)
        },
    ];
    for read in reads {
        let expected = without_metadata(store.read_log(&read).await.unwrap());
        assert_eq!(
            visit_log(store, &read).await,
            expected,
            "visit_log of {read:?}"
        );
    }
    assert_eq!(
        visit_log(store, &LogRead::forward(first, EVENTS))
            .await
            .len(),
        EVENTS
    );
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
    custom.insert("tenant".to_owned(), "ÅÄÖ-株式会社".into());
    custom.insert("empty".to_owned(), "".into());
    custom.insert("json-ish".to_owned(), "{\"not\":\"parsed\"}".into());
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

/// The application's metadata keys hold any JSON value, and every read gives each back
/// exactly: numbers stay numbers of the same value (a tenant id 42 is not "42"), booleans,
/// null, arrays and nested objects stay what they were.
pub async fn metadata_values_of_any_json_type_round_trip<S: EventStore>(store: &S) {
    use serde_json::{json, Value};
    let metadata = Metadata::new()
        .with_correlation_id(Uuid::new_v4())
        .with("tenant_id", 42)
        .with("tenant_code", "42")
        .with("negative", -7)
        .with("largest", u64::MAX)
        .with("smallest", i64::MIN)
        .with("tenth", 0.1)
        .with("huge", 1e300)
        .with("beta", true)
        .with("legacy", false)
        .with("nothing", Value::Null)
        .with("tags", json!(["a", 1, [], {}]))
        .with(
            "org",
            json!({ "id": 7, "name": "Åkesson & 株式会社", "parent": { "id": 1, "tags": [] } }),
        )
        .with("empty", json!({}))
        .with("ключ 🔑", "value");
    let stream = new_stream();
    let written: Vec<NewEvent> = ["a", "b"]
        .iter()
        .map(|tag| NewEvent {
            metadata: metadata.clone(),
            ..tagged_event(tag)
        })
        .collect();
    let appended = store
        .append(&stream, ExpectedVersion::Any, written)
        .await
        .unwrap()
        .events;
    let first = appended[0].position;
    let ids: Vec<Uuid> = appended.iter().map(|e| e.event_id).collect();
    let reads = [
        appended.clone(),
        read_whole_stream(store, &stream).await,
        store.read_log(&LogRead::forward(first, 2)).await.unwrap(),
        store.read_events_by_id(&ids).await.unwrap(),
    ];
    for read in reads {
        assert_eq!(read.len(), 2);
        for stored in read {
            assert_eq!(stored.metadata, metadata, "metadata changed");
            let get = |key: &str| stored.metadata.get(key).cloned();
            assert_eq!(get("tenant_id").and_then(|v| v.as_u64()), Some(42));
            assert_eq!(get("tenant_code"), Some(json!("42")));
            assert_eq!(get("negative").and_then(|v| v.as_i64()), Some(-7));
            assert_eq!(get("largest").and_then(|v| v.as_u64()), Some(u64::MAX));
            assert_eq!(get("smallest").and_then(|v| v.as_i64()), Some(i64::MIN));
            assert_eq!(get("tenth").and_then(|v| v.as_f64()), Some(0.1));
            assert_eq!(get("huge").and_then(|v| v.as_f64()), Some(1e300));
            assert_eq!(get("beta"), Some(Value::Bool(true)));
            assert_eq!(get("nothing"), Some(Value::Null));
            assert_eq!(get("org").and_then(|v| v["parent"]["id"].as_u64()), Some(1));
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

fn typed(event_type: &str, tag: &str) -> NewEvent {
    NewEvent {
        event_type: event_type.to_owned(),
        ..tagged_event(tag)
    }
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, expected: &str) {
    match result {
        Err(StoreError::InvalidArgument { argument, .. }) => {
            assert_eq!(argument, expected, "the refusal names another argument");
        }
        other => panic!("expected InvalidArgument for `{expected}`, got {other:?}"),
    }
}

/// Every event of `read` (whatever its limit), page by page of `page` events, each next
/// page starting one past the last event read.
async fn read_in_pages<S: EventStore>(
    store: &S,
    read: &LogRead,
    page: usize,
) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut next = LogRead {
        limit: page,
        ..read.clone()
    };
    loop {
        let events = store.read_log(&next).await.expect("read_log failed");
        assert!(events.len() <= page, "a page longer than its limit");
        let Some(last) = events.last() else {
            return all;
        };
        let from = match next.direction {
            Direction::Forward => last.position.checked_add(1),
            Direction::Backward => last.position.checked_sub(1),
        };
        all.extend(events);
        match from {
            Some(from) => next.from = from,
            None => return all,
        }
    }
}

/// Reads of the global log restricted to event types and/or stream categories return
/// exactly the events [`EventFilter::matches`] takes (OR within a list, AND across the
/// two; a category is the stream id up to its first `-`), with their global positions, in
/// either direction, whole or page by page, from any position.
pub async fn filtered_reads_take_the_asked_types_and_categories<S: EventStore>(store: &S) {
    // Names of this check's own, so that the filters take no other check's events.
    let tag = Uuid::new_v4().simple().to_string();
    let (cart, order, look_alike) = (
        format!("Cart{tag}"),
        format!("Order{tag}"),
        format!("Cart{tag}s"),
    );
    let (added, removed, placed) = (
        format!("Added{tag}"),
        format!("Removed{tag}"),
        format!("Placed{tag}"),
    );
    let plan = [
        (format!("{cart}-1"), &added, 2),
        (format!("{order}-1"), &placed, 1),
        (format!("{look_alike}-1"), &added, 1),
        (format!("{cart}-2"), &removed, 1),
        (cart.clone(), &added, 1), // no '-': the whole id is the category
        (format!("{order}-1"), &added, 1),
        (format!("{cart}-1-x"), &removed, 2),
        (format!("{order}-2"), &placed, 1),
        // A type the Cart-and-Removed filter asks for, in a category it leaves out: a store
        // that ignored the categories whenever types are given would return it.
        (format!("{order}-3"), &removed, 1),
    ];
    let mut mine = Vec::new();
    for (stream, event_type, count) in &plan {
        let batch = (0..*count)
            .map(|i| typed(event_type, &format!("f{i}")))
            .collect();
        let appended = store
            .append(stream, ExpectedVersion::Any, batch)
            .await
            .expect("append failed");
        mine.extend(appended.events);
    }
    let filters = [
        EventFilter::all().with_categories([&cart]),
        EventFilter::all().with_categories([&cart, &order]),
        EventFilter::all().with_event_types([&added]),
        EventFilter::all().with_event_types([&added, &placed]),
        EventFilter::all()
            .with_categories([&cart])
            .with_event_types([&removed]),
        EventFilter::all()
            .with_categories([&cart, &order, &look_alike])
            .with_event_types([&added, &placed]),
    ];
    for filter in filters {
        let expected: Vec<RecordedEvent> = mine
            .iter()
            .filter(|e| filter.matches(&e.stream_id, &e.event_type))
            .cloned()
            .collect();
        assert!(expected.len() >= 2, "the check needs two events per filter");
        let mut newest_first = expected.clone();
        newest_first.reverse();
        let forward = LogRead::forward(0, usize::MAX).matching(filter.clone());
        let backward = LogRead::backward(u64::MAX, usize::MAX).matching(filter.clone());
        let whole = store.read_log(&forward).await.expect("read_log failed");
        assert_eq!(whole, expected, "forward read of {filter:?}");
        let whole = store.read_log(&backward).await.expect("read_log failed");
        assert_eq!(whole, newest_first, "backward read of {filter:?}");
        for page in [1, 2, 3] {
            let paged = read_in_pages(store, &forward, page).await;
            assert_eq!(paged, expected, "forward pages of {page} of {filter:?}");
            let paged = read_in_pages(store, &backward, page).await;
            assert_eq!(
                paged, newest_first,
                "backward pages of {page} of {filter:?}"
            );
        }
        // From a position of the filter's, and from one just after (or before) it.
        let second = expected[1].position;
        let from = |from, direction| LogRead {
            from,
            direction,
            limit: usize::MAX,
            filter: filter.clone(),
        };
        let read = |read: LogRead| async move { store.read_log(&read).await.unwrap() };
        assert_eq!(read(from(second, Direction::Forward)).await, expected[1..]);
        assert_eq!(
            read(from(second + 1, Direction::Forward)).await,
            expected[2..]
        );
        let mut up_to_second = expected[..2].to_vec();
        up_to_second.reverse();
        assert_eq!(read(from(second, Direction::Backward)).await, up_to_second);
        assert_eq!(
            read(from(second - 1, Direction::Backward)).await,
            expected[..1]
        );
        let limited = LogRead::forward(0, 1).matching(filter.clone());
        assert_eq!(
            read(limited).await,
            expected[..1],
            "the limit counts taken events"
        );
    }
}

/// A read limit of 0, and a filter whose type or category list is set but empty, are
/// refused as invalid arguments rather than read as "nothing".
pub async fn reads_refuse_a_zero_limit_and_empty_filter_lists<S: EventStore>(store: &S) {
    store
        .append(&new_stream(), ExpectedVersion::Any, events("z", 1))
        .await
        .unwrap();
    assert_invalid(store.read_log(&LogRead::forward(1, 0)).await, "limit");
    assert_invalid(
        store.read_log(&LogRead::backward(u64::MAX, 0)).await,
        "limit",
    );
    let none: [&str; 0] = [];
    let empty_lists = [
        EventFilter::all().with_event_types(none),
        EventFilter::all().with_categories(none),
        EventFilter::all()
            .with_categories(["conformance"])
            .with_event_types(none),
    ];
    for filter in empty_lists {
        for read in [LogRead::forward(1, 10), LogRead::backward(u64::MAX, 10)] {
            assert_invalid(
                store.read_log(&read.matching(filter.clone())).await,
                "filter",
            );
        }
    }
}

/// The global log read backward: newest first, `from` inclusive (`u64::MAX`: the end),
/// page by page down to the first event, at and past both ends.
pub async fn backward_global_reads_on_empty_store<S: EventStore>(store: &S) {
    let newest = LogRead::backward(u64::MAX, 10);
    assert!(
        store.read_log(&newest).await.unwrap().is_empty(),
        "needs an empty store"
    );
    let (a, b) = (new_stream(), new_stream());
    for (stream, count) in [(&a, 3), (&b, 2), (&a, 1), (&b, 3)] {
        store
            .append(stream, ExpectedVersion::Any, events("b", count))
            .await
            .unwrap();
    }
    let all = read_whole_log(store).await;
    let mut reversed = all.clone();
    reversed.reverse();
    let back = |from, limit| async move {
        store
            .read_log(&LogRead::backward(from, limit))
            .await
            .expect("backward read failed")
    };
    assert_eq!(back(u64::MAX, usize::MAX).await, reversed);
    assert_eq!(back(u64::MAX, 3).await, reversed[..3]);
    let last = all[all.len() - 1].position;
    assert_eq!(back(last, 1).await, reversed[..1], "from is inclusive");
    assert_eq!(back(last + 100, 2).await, reversed[..2]);
    assert_eq!(
        back(all[2].position, 2).await,
        [all[2].clone(), all[1].clone()]
    );
    assert_eq!(back(all[0].position, 10).await, all[..1]);
    assert!(back(0, 10).await.is_empty(), "nothing is at or before 0");
    for page in [1, 2, 4] {
        let paged = read_in_pages(store, &LogRead::backward(u64::MAX, usize::MAX), page).await;
        assert_eq!(paged, reversed, "backward pages of {page}");
    }
}

/// Events are found by id: in position order whatever the order asked, each once, ids
/// never stored left out, no ids giving no events.
pub async fn events_are_found_by_id<S: EventStore>(store: &S) {
    let (a, b) = (new_stream(), new_stream());
    let first = store
        .append(&a, ExpectedVersion::Any, events("i", 3))
        .await
        .unwrap()
        .events;
    let second = store
        .append(&b, ExpectedVersion::Any, events("j", 2))
        .await
        .unwrap()
        .events;
    let by_id = |ids: Vec<Uuid>| async move {
        store
            .read_events_by_id(&ids)
            .await
            .expect("read_events_by_id failed")
    };
    assert!(by_id(Vec::new()).await.is_empty());
    assert_eq!(by_id(vec![second[1].event_id]).await, second[1..]);
    let unknown = Uuid::new_v4();
    let asked = vec![
        second[1].event_id,
        first[0].event_id,
        unknown,
        first[2].event_id,
        first[0].event_id,
    ];
    assert_eq!(
        by_id(asked).await,
        [first[0].clone(), first[2].clone(), second[1].clone()],
        "position order, each once, the unknown id left out"
    );
    assert!(by_id(vec![unknown, Uuid::nil()]).await.is_empty());
    let every: Vec<Uuid> = first
        .iter()
        .chain(&second)
        .map(|e| e.event_id)
        .rev()
        .collect();
    let found = by_id(every).await;
    assert_eq!(found, [first, second].concat());
}

/// The first event recorded at or after the instant asked for; every event before it was
/// recorded earlier (times never decrease along positions). Instants between two stored
/// times, before the first and after the last are all answered.
pub async fn position_at_finds_the_first_event_recorded_then_on_empty_store<S: EventStore>(
    store: &S,
) {
    assert_eq!(store.position_at(recorded_now()).await.unwrap(), None);
    assert!(
        read_whole_log(store).await.is_empty(),
        "needs an empty store"
    );
    let stream = new_stream();
    for _ in 0..4 {
        store
            .append(&stream, ExpectedVersion::Any, events("t", 2))
            .await
            .unwrap();
        // Apart by more than the precision kept, so that the batches' times differ.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let log = read_whole_log(store).await;
    let reference =
        |at: DateTime<Utc>| log.iter().find(|e| e.recorded_at >= at).map(|e| e.position);
    let mut instants = vec![DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC];
    for event in &log {
        let at = event.recorded_at;
        for offset in [
            Duration::zero(),
            Duration::nanoseconds(1),
            Duration::nanoseconds(-1),
            Duration::microseconds(1),
            Duration::microseconds(-1),
        ] {
            instants.push(at + offset);
        }
    }
    for at in instants {
        assert_eq!(
            store.position_at(at).await.expect("position_at failed"),
            reference(at),
            "the first position recorded at or after {at:?}"
        );
    }
    assert_eq!(
        store.position_at(DateTime::<Utc>::MIN_UTC).await.unwrap(),
        Some(log[0].position)
    );
    let distinct: HashSet<_> = log.iter().map(|e| e.recorded_at).collect();
    assert!(
        distinct.len() >= 4,
        "the batches were recorded at distinct times"
    );
}

/// `recorded_at` never decreases along positions, even with many writers at once: time
/// and log order agree.
pub async fn recorded_at_never_decreases_along_positions<S: EventStore>(store: &S) {
    let prefix = new_stream();
    run_on_threads(WRITERS, |writer| {
        let stream = format!("{prefix}-{writer}");
        async move {
            for _ in 0..EVENTS_PER_WRITER / 2 {
                store
                    .append(&stream, ExpectedVersion::Any, events("r", 2))
                    .await
                    .unwrap_or_else(|e| panic!("writer {writer} was refused: {e}"));
            }
        }
    });
    let log = read_whole_log(store).await;
    for pair in log.windows(2) {
        assert!(
            pair[0].recorded_at <= pair[1].recorded_at,
            "position {} was recorded at {}, after position {} at {}",
            pair[0].position,
            pair[0].recorded_at,
            pair[1].position,
            pair[1].recorded_at
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
                let new = tagged_event(&format!("w{writer}"));
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
                let new = tagged_event("m");
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

/// When a store gives an append signal ([`EventStore::appends`]), it holds the position of
/// the latest append after each append returns: the last event's, for a batch. Empty and
/// refused appends leave it where it was. (A store that returns `None` passes: readers
/// then poll.)
pub async fn the_append_signal_reports_each_append_on_empty_store<S: EventStore>(store: &S) {
    let Some(mut signal) = store.appends() else {
        return;
    };
    assert!(
        read_whole_log(store).await.is_empty(),
        "needs an empty store"
    );
    assert_eq!(*signal.borrow_and_update(), 0, "nothing appended yet");
    let (a, b) = (new_stream(), new_stream());
    for (stream, count) in [(&a, 1), (&b, 3), (&a, 2)] {
        let appended = store
            .append(stream, ExpectedVersion::Any, events("s", count))
            .await
            .unwrap();
        let last = appended.events.last().map(|e| e.position);
        assert!(
            signal.has_changed().unwrap_or(false),
            "no signal of the append"
        );
        assert_eq!(Some(*signal.borrow_and_update()), last);
        let late = store.appends().map(|late| *late.borrow());
        assert_eq!(
            late, last,
            "a signal taken later starts at the latest append"
        );
    }
    let before = *signal.borrow_and_update();
    store
        .append(&a, ExpectedVersion::Any, Vec::new())
        .await
        .unwrap();
    let refused = store
        .append(&a, ExpectedVersion::NoStream, events("x", 1))
        .await;
    assert!(refused.is_err());
    assert_eq!(
        *signal.borrow(),
        before,
        "an append that added nothing moved the signal"
    );
}

/// A checkpoint store starts every subscription at 0, gives back what was saved last
/// (moving forward, and back to 0 as a reset does), and keeps each name's apart.
pub async fn checkpoints_start_at_zero_and_keep_the_latest<S: CheckpointStore>(store: &S) {
    let (name, other) = (new_stream(), new_stream());
    assert_eq!(
        store.load_checkpoint(&name).await.unwrap(),
        0,
        "an unknown name"
    );
    store.save_checkpoint(&name, 7).await.unwrap();
    assert_eq!(store.load_checkpoint(&name).await.unwrap(), 7);
    store.save_checkpoint(&name, 12).await.unwrap();
    assert_eq!(
        store.load_checkpoint(&name).await.unwrap(),
        12,
        "overwritten"
    );
    assert_eq!(
        store.load_checkpoint(&other).await.unwrap(),
        0,
        "names share a checkpoint"
    );
    store.save_checkpoint(&other, 3).await.unwrap();
    assert_eq!(store.load_checkpoint(&name).await.unwrap(), 12);
    store.save_checkpoint(&name, 0).await.unwrap();
    assert_eq!(
        store.load_checkpoint(&name).await.unwrap(),
        0,
        "reset to the start"
    );
    assert_eq!(store.load_checkpoint(&other).await.unwrap(), 3);
    // A position as large as a signed 64-bit rowid (SQLite's) is kept whole.
    let largest = u64::try_from(i64::MAX).unwrap_or(u64::MAX);
    store
        .save_checkpoint("名前 with spaces", largest)
        .await
        .unwrap();
    assert_eq!(
        store.load_checkpoint("名前 with spaces").await.unwrap(),
        largest
    );
}

/// A batch appends to several streams (twice to one, the second after the first) and
/// records the subscription's checkpoint, together; later batches of the same subscription
/// move it on.
pub async fn batches_commit_appends_and_checkpoint_together<S: TrackingStore>(store: &S) {
    let (first, second, subscription) = (new_stream(), new_stream(), new_stream());
    store
        .append(&first, ExpectedVersion::NoStream, events("old", 1))
        .await
        .unwrap();
    let (one, two, three) = (events("a", 2), events("b", 1), events("c", 1));
    let batch = AppendBatch::new()
        .append(&first, ExpectedVersion::Exact(1), one.clone())
        .append(&second, ExpectedVersion::NoStream, two.clone())
        .append(&first, ExpectedVersion::Exact(3), three.clone())
        .tracking(&subscription, 40);
    let outcomes = store.append_batch(batch).await.unwrap();
    let versions: Vec<u64> = outcomes.iter().map(|appended| appended.version).collect();
    assert_eq!(versions, [3, 1, 4], "each append's version, in batch order");
    let stored = read_whole_stream(store, &first).await;
    assert_eq!(stored.len(), 4);
    for (stored, written) in stored[1..].iter().zip(one.iter().chain(&three)) {
        assert_same_event(stored, written);
    }
    assert_same_event(&read_whole_stream(store, &second).await[0], &two[0]);
    assert_eq!(
        outcomes[2].events[0], stored[3],
        "the outcome is the event as stored"
    );
    assert_eq!(store.load_checkpoint(&subscription).await.unwrap(), 40);
    // Only a checkpoint, no append: a reaction that issued no command.
    let outcomes = store
        .append_batch(AppendBatch::new().tracking(&subscription, 41))
        .await
        .unwrap();
    assert!(outcomes.is_empty());
    assert_eq!(store.load_checkpoint(&subscription).await.unwrap(), 41);
    // No checkpoint: appends only, the checkpoint left alone.
    store
        .append_batch(AppendBatch::new().append(&second, ExpectedVersion::Exact(1), events("d", 1)))
        .await
        .unwrap();
    assert_eq!(store.stream_version(&second).await.unwrap(), Some(2));
    assert_eq!(store.load_checkpoint(&subscription).await.unwrap(), 41);
}

/// A batch is refused whole, changing nothing (no event, no checkpoint): for a checkpoint
/// not past the stored one ([`StoreError::CheckpointPassed`]), a checkpoint of 0, a wrong
/// expected version or a taken event id in any of its appends, or an invalid stream id.
pub async fn refused_batches_change_nothing<S: TrackingStore>(store: &S) {
    let (stream, fresh, subscription) = (new_stream(), new_stream(), new_stream());
    store
        .append(&stream, ExpectedVersion::NoStream, events("x", 2))
        .await
        .unwrap();
    store.save_checkpoint(&subscription, 10).await.unwrap();
    let taken = read_whole_stream(store, &stream).await[0].event_id;
    let mut duplicate = events("dup", 1);
    duplicate[0].event_id = taken;
    let good = || AppendBatch::new().append(&fresh, ExpectedVersion::NoStream, events("n", 2));
    let refusals = [
        (
            good().tracking(&subscription, 10),
            "a checkpoint equal to the stored one",
        ),
        (
            good().tracking(&subscription, 9),
            "a checkpoint before the stored one",
        ),
        (good().tracking(&subscription, 0), "a checkpoint of 0"),
        (
            good()
                .append(&stream, ExpectedVersion::Exact(1), events("late", 1))
                .tracking(&subscription, 11),
            "a wrong expected version in the last append",
        ),
        (
            good()
                .append(&stream, ExpectedVersion::Exact(2), duplicate)
                .tracking(&subscription, 11),
            "a taken event id in the last append",
        ),
        (
            good()
                .append("", ExpectedVersion::Any, events("e", 1))
                .tracking(&subscription, 11),
            "an empty stream id",
        ),
    ];
    let before = read_whole_log(store).await.len();
    for (batch, why) in refusals {
        let outcome = store.append_batch(batch).await;
        match (&outcome, why) {
            (
                Err(StoreError::CheckpointPassed {
                    subscription: name,
                    position,
                    checkpoint,
                }),
                _,
            ) if why.contains("stored") => {
                assert_eq!((name, *checkpoint), (&subscription, 10), "{why}");
                assert!(*position <= 10, "{why}");
            }
            (Err(StoreError::InvalidArgument { .. }), _) if why.contains("of 0") => {}
            (Err(StoreError::WrongExpectedVersion { .. }), _) if why.contains("expected") => {}
            (Err(StoreError::DuplicateEventId { event_id, .. }), _) if why.contains("taken") => {
                assert_eq!(*event_id, taken);
            }
            (Err(StoreError::InvalidStreamId { .. }), _) if why.contains("stream id") => {}
            _ => panic!("{why}: expected its own refusal, got {outcome:?}"),
        }
        assert_eq!(
            store.stream_version(&fresh).await.unwrap(),
            None,
            "{why}: the batch's other append stayed"
        );
        assert_eq!(
            store.stream_version(&stream).await.unwrap(),
            Some(2),
            "{why}"
        );
        assert_eq!(read_whole_log(store).await.len(), before, "{why}");
        assert_eq!(
            store.load_checkpoint(&subscription).await.unwrap(),
            10,
            "{why}: the checkpoint moved"
        );
    }
    // The same batch, with its checkpoint past the stored one, commits.
    store
        .append_batch(good().tracking(&subscription, 11))
        .await
        .unwrap();
    assert_eq!(store.stream_version(&fresh).await.unwrap(), Some(2));
}

/// Batches reacting to the same event of the same subscription, raced from many tasks
/// (two processes running one subscription, say), commit exactly once: the others are
/// [`StoreError::CheckpointPassed`] and append nothing.
pub async fn one_batch_per_tracked_event_under_concurrency<S: TrackingStore>(store: &S) {
    let (stream, subscription) = (new_stream(), new_stream());
    for position in [5_u64, 6] {
        let outcomes = run_on_threads(WRITERS, |writer| {
            store.append_batch(
                AppendBatch::new()
                    .append(
                        &stream,
                        ExpectedVersion::Any,
                        events(&format!("w{writer}"), 1),
                    )
                    .tracking(&subscription, position),
            )
        });
        let committed = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(
            committed, 1,
            "batches tracking position {position}: {outcomes:?}"
        );
        for outcome in &outcomes {
            assert!(
                matches!(outcome, Ok(_) | Err(StoreError::CheckpointPassed { .. })),
                "{outcome:?}"
            );
        }
    }
    assert_eq!(read_whole_stream(store, &stream).await.len(), 2);
    assert_eq!(store.load_checkpoint(&subscription).await.unwrap(), 6);
}

/// An entry of the parked list, as a subscription would record it.
fn parked_entry(subscription: &str, position: u64, error: &str) -> ParkedEvent {
    ParkedEvent {
        subscription: subscription.to_owned(),
        position,
        event_id: Uuid::new_v4(),
        stream_id: format!("Tally-{position}"),
        version: position % 1000 + 1,
        event_type: "Added".to_owned(),
        error: error.to_owned(),
        attempts: 5,
        parked_at: recorded_now(),
    }
}

/// A parking store keeps each subscription's parked events apart, lists them in position
/// order field for field, replaces an entry parked again at the same position, and removes
/// one entry at a time, saying whether it was there.
pub async fn parked_events_are_kept_per_subscription_in_position_order<S: ParkingStore>(store: &S) {
    let (name, other) = (new_stream(), new_stream());
    assert!(
        store.parked(&name).await.unwrap().is_empty(),
        "an unknown name"
    );
    let largest = u64::try_from(i64::MAX).unwrap_or(u64::MAX);
    let seven = parked_entry(&name, 7, "handler failed: 日本語 \"quoted\"\nsecond line");
    let three = parked_entry(&name, 3, "boom");
    let far = parked_entry(&name, largest, "far");
    for parked in [&seven, &three, &far, &parked_entry(&other, 5, "other")] {
        store.park(parked.clone()).await.unwrap();
    }
    assert_eq!(
        store.parked(&name).await.unwrap(),
        [three.clone(), seven.clone(), far.clone()],
        "in position order, every field as parked"
    );
    let again = ParkedEvent {
        error: "failed again".to_owned(),
        attempts: 11,
        ..seven.clone()
    };
    store.park(again.clone()).await.unwrap();
    assert_eq!(
        store.parked(&name).await.unwrap(),
        [three.clone(), again, far.clone()],
        "parked again at the same position: replaced, not added"
    );
    assert!(store.unpark(&name, 7).await.unwrap());
    assert!(!store.unpark(&name, 7).await.unwrap(), "removed twice");
    assert!(!store.unpark(&name, 4).await.unwrap(), "never parked");
    assert_eq!(store.parked(&name).await.unwrap(), [three, far]);
    assert_eq!(
        store.parked(&other).await.unwrap().len(),
        1,
        "another subscription's entries changed"
    );
}

/// A batch unparking an event commits its appends and the entry's removal together; a
/// second one for the same entry is [`StoreError::NotParked`]; a batch with a checkpoint is
/// an invalid argument; any refusal appends nothing and leaves the entry parked.
pub async fn unparking_batches_commit_with_their_appends<S: TrackingStore + ParkingStore>(
    store: &S,
) {
    let (stream, subscription) = (new_stream(), new_stream());
    store.save_checkpoint(&subscription, 20).await.unwrap();
    store
        .park(parked_entry(&subscription, 9, "boom"))
        .await
        .unwrap();
    let batch = || AppendBatch::new().append(&stream, ExpectedVersion::Any, events("r", 2));
    let before = read_whole_log(store).await.len();
    let refusals = [
        (batch().tracking(&subscription, 21), "a tracking checkpoint"),
        (
            batch().append(&stream, ExpectedVersion::Exact(7), events("late", 1)),
            "a wrong expected version",
        ),
    ];
    for (refused, why) in refusals {
        let outcome = store
            .append_batch_unparking(refused, &subscription, 9)
            .await;
        match (&outcome, why) {
            (Err(StoreError::InvalidArgument { argument, .. }), _) if why.contains("tracking") => {
                assert_eq!(*argument, "batch");
            }
            (Err(StoreError::WrongExpectedVersion { .. }), _) if why.contains("expected") => {}
            _ => panic!("{why}: expected its own refusal, got {outcome:?}"),
        }
        assert_eq!(read_whole_log(store).await.len(), before, "{why}: appended");
        assert_eq!(store.parked(&subscription).await.unwrap().len(), 1, "{why}");
        assert_eq!(store.load_checkpoint(&subscription).await.unwrap(), 20);
    }
    let outcomes = store
        .append_batch_unparking(batch(), &subscription, 9)
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(read_whole_stream(store, &stream).await.len(), 2);
    assert!(store.parked(&subscription).await.unwrap().is_empty());
    assert_eq!(
        store.load_checkpoint(&subscription).await.unwrap(),
        20,
        "the checkpoint moved"
    );
    match store
        .append_batch_unparking(batch(), &subscription, 9)
        .await
    {
        Err(StoreError::NotParked {
            subscription: name,
            position,
        }) => assert_eq!((name.as_str(), position), (subscription.as_str(), 9)),
        other => panic!("expected NotParked, got {other:?}"),
    }
    assert_eq!(
        read_whole_stream(store, &stream).await.len(),
        2,
        "a batch for an entry gone appended"
    );
    // No append: a reaction that issued no command still takes the entry off.
    store
        .park(parked_entry(&subscription, 10, "boom"))
        .await
        .unwrap();
    store
        .append_batch_unparking(AppendBatch::new(), &subscription, 10)
        .await
        .unwrap();
    assert!(store.parked(&subscription).await.unwrap().is_empty());
}

/// Batches retrying the same parked event, raced from many tasks, commit exactly once: the
/// others are [`StoreError::NotParked`] and append nothing.
pub async fn one_unparking_batch_per_parked_event_under_concurrency<
    S: TrackingStore + ParkingStore,
>(
    store: &S,
) {
    let (stream, subscription) = (new_stream(), new_stream());
    store
        .park(parked_entry(&subscription, 4, "boom"))
        .await
        .unwrap();
    let outcomes = run_on_threads(WRITERS, |writer| {
        store.append_batch_unparking(
            AppendBatch::new().append(
                &stream,
                ExpectedVersion::Any,
                events(&format!("w{writer}"), 1),
            ),
            &subscription,
            4,
        )
    });
    let committed = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(committed, 1, "{outcomes:?}");
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Ok(_) | Err(StoreError::NotParked { .. })),
            "{outcome:?}"
        );
    }
    assert_eq!(read_whole_stream(store, &stream).await.len(), 1);
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

/// The promise only a single-writer backend (memory, SQLite) keeps beyond the contract:
/// positions run 1, 2, 3, ... without gaps, failed appends included. A backend whose
/// positions come from a sequence that rolled-back transactions consume leaves it out.
#[macro_export]
macro_rules! gap_free_positions_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@each $make; positions_are_gap_free_on_empty_store,);
    };
}

/// One `#[tokio::test]` per checkpoint-store check, each on a fresh store (see
/// [`store_conformance_tests!`](crate::store_conformance_tests)).
#[macro_export]
macro_rules! checkpoint_store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@each $make;
            checkpoints_start_at_zero_and_keep_the_latest,
        );
    };
}

/// One `#[tokio::test]` per check of [`ParkingStore`], and of the batches of a
/// [`TrackingStore`] that retry a parked event, each on a fresh store (see
/// [`store_conformance_tests!`](crate::store_conformance_tests)). The store implements
/// both traits.
#[macro_export]
macro_rules! parking_store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@each $make;
            parked_events_are_kept_per_subscription_in_position_order,
            unparking_batches_commit_with_their_appends,
            one_unparking_batch_per_parked_event_under_concurrency,
        );
    };
}

/// One `#[tokio::test]` per check of [`TrackingStore`]'s batches, each on a fresh store
/// (see [`store_conformance_tests!`](crate::store_conformance_tests)).
#[macro_export]
macro_rules! tracking_store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@each $make;
            batches_commit_appends_and_checkpoint_together,
            refused_batches_change_nothing,
            one_batch_per_tracked_event_under_concurrency,
        );
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
            visits_hand_over_what_reads_return,
            a_read_limit_of_zero_is_an_invalid_argument,
            global_paging_on_empty_store,
            metadata_and_unicode_round_trip,
            metadata_values_of_any_json_type_round_trip,
            timestamps_have_microsecond_precision,
            concurrent_writers_on_one_stream,
            concurrent_writers_on_many_streams,
            filtered_reads_take_the_asked_types_and_categories,
            reads_refuse_a_zero_limit_and_empty_filter_lists,
            backward_global_reads_on_empty_store,
            events_are_found_by_id,
            position_at_finds_the_first_event_recorded_then_on_empty_store,
            recorded_at_never_decreases_along_positions,
            the_append_signal_reports_each_append_on_empty_store,
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
