//! Filtered reads of the log across what is indexed and what is not yet (schema 6: the
//! `log_by_*` tables are written a batch of events at a time): every page, in either
//! direction and from any position, holds exactly what a filter of the whole log holds;
//! and an index entry that no longer fits its event is `Corrupt`.

mod common;

use common::{db_path, raw};
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{
    Direction, EventFilter, EventStore, ExpectedVersion, LogRead, NewEvent, RecordedEvent,
    StoreError,
};
use cqrs_sqlite::SqliteStore;
use std::path::Path;

/// Streams of three categories, events of three types.
const STREAMS: [&str; 5] = ["Cart-1", "Cart-2", "Order-1", "Order-2", "Ship-1"];
const TYPES: [&str; 3] = ["Added", "Removed", "Placed"];

/// Appends `count` events, in batches of 1 to 4, spread over the streams and types by a
/// fixed pattern, so that the log is indexed several times over and ends with events not
/// indexed yet.
async fn fill(store: &SqliteStore, count: usize) {
    let mut appended = 0;
    let mut round = 0;
    while appended < count {
        let batch = (round % 4 + 1).min(count - appended);
        let stream = STREAMS[(round * 7) % STREAMS.len()];
        let events: Vec<NewEvent> = (0..batch)
            .map(|i| NewEvent {
                event_type: TYPES[(round + i * 2) % TYPES.len()].to_owned(),
                ..tagged_event(&format!("{round}-{i}"))
            })
            .collect();
        store
            .append(stream, ExpectedVersion::Any, events)
            .await
            .unwrap();
        appended += batch;
        round += 1;
    }
}

/// Up to where the log is indexed, and how many entries each index table holds.
fn indexed(path: &Path) -> (i64, i64, i64) {
    raw(path)
        .query_row(
            "SELECT (SELECT up_to FROM log_indexed), (SELECT count(*) FROM log_by_category), \
             (SELECT count(*) FROM log_by_type)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap()
}

/// Every event of `read`, page by page of `page` events.
async fn in_pages(store: &SqliteStore, read: &LogRead, page: usize) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut next = LogRead {
        limit: page,
        ..read.clone()
    };
    loop {
        let events = store.read_log(&next).await.unwrap();
        assert!(events.len() <= page);
        let Some(last) = events.last() else {
            return all;
        };
        let from = match next.direction {
            Direction::Forward => last.position.checked_add(1),
            Direction::Backward => last.position.checked_sub(1),
        };
        all.extend(events);
        match from {
            Some(from) if from > 0 => next.from = from,
            _ => return all,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_pages_read_across_the_indexed_and_the_new_events_alike() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db_path(&dir)).await.unwrap();
    fill(&store, 700).await;
    let (up_to, by_category, by_type) = indexed(&db_path(&dir));
    assert!(
        (128..700).contains(&up_to),
        "the log must end with events not indexed yet: indexed up to {up_to}"
    );
    assert_eq!(
        (by_category, by_type),
        (up_to, up_to),
        "one entry per indexed event"
    );

    let everything = store.read_all(1, usize::MAX).await.unwrap();
    assert_eq!(everything.len(), 700);
    let filters = [
        EventFilter::all().with_categories(["Cart"]),
        EventFilter::all().with_categories(["Order", "Ship"]),
        EventFilter::all().with_event_types(["Removed"]),
        EventFilter::all().with_event_types(["Added", "Placed"]),
        EventFilter::all()
            .with_categories(["Cart", "Ship"])
            .with_event_types(["Placed", "Removed"]),
        EventFilter::all().with_categories(["Nobody"]),
    ];
    let boundary = u64::try_from(up_to).unwrap();
    for filter in filters {
        let expected: Vec<&RecordedEvent> = everything
            .iter()
            .filter(|event| filter.matches(&event.stream_id, &event.event_type))
            .collect();
        for from in [1, boundary - 3, boundary, boundary + 1, 650] {
            for page in [1, 7, 1000] {
                let forward = LogRead {
                    filter: filter.clone(),
                    ..LogRead::forward(from, usize::MAX)
                };
                let read = in_pages(&store, &forward, page).await;
                let wanted: Vec<&RecordedEvent> = expected
                    .iter()
                    .copied()
                    .filter(|e| e.position >= from)
                    .collect();
                assert_eq!(
                    read.iter().collect::<Vec<_>>(),
                    wanted,
                    "{filter:?} forward from {from}, pages of {page}"
                );
                let backward = LogRead {
                    filter: filter.clone(),
                    ..LogRead::backward(from, usize::MAX)
                };
                let read = in_pages(&store, &backward, page).await;
                let wanted: Vec<&RecordedEvent> = expected
                    .iter()
                    .rev()
                    .copied()
                    .filter(|e| e.position <= from)
                    .collect();
                assert_eq!(
                    read.iter().collect::<Vec<_>>(),
                    wanted,
                    "{filter:?} backward from {from}, pages of {page}"
                );
            }
        }
    }
}

#[tokio::test]
async fn an_index_entry_that_no_longer_fits_its_event_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db_path(&dir)).await.unwrap();
    fill(&store, 300).await;
    let moved: i64 = raw(&db_path(&dir))
        .query_row(
            "SELECT position FROM events WHERE stream_id LIKE 'Cart-%' \
             ORDER BY position LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    // Moved to another category by hand, after it was indexed under `Cart`.
    raw(&db_path(&dir))
        .execute_batch(&format!(
            "DROP TRIGGER events_refuse_update;
             UPDATE events SET stream_id = 'Elsewhere-1' WHERE position = {moved};"
        ))
        .unwrap();
    let read = LogRead {
        filter: EventFilter::all().with_categories(["Cart"]),
        ..LogRead::forward(1, 100)
    };
    match store.read_log(&read).await {
        Err(StoreError::Corrupt {
            stream_id,
            position,
            reason,
            ..
        }) => {
            let moved = u64::try_from(moved).unwrap();
            assert_eq!((stream_id.as_str(), position), ("Elsewhere-1", Some(moved)));
            assert!(reason.contains("index"), "{reason}");
        }
        other => panic!("expected Corrupt for the moved event, got {other:?}"),
    }
    // Reads that do not go through its entry are whole.
    let others = LogRead {
        filter: EventFilter::all().with_categories(["Order"]),
        ..LogRead::forward(1, 1000)
    };
    assert!(!store.read_log(&others).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_lost_index_mark_reads_every_event_and_is_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db_path(&dir)).await.unwrap();
    fill(&store, 300).await;
    raw(&db_path(&dir))
        .execute_batch("DELETE FROM log_indexed;")
        .unwrap();
    let read = LogRead {
        filter: EventFilter::all().with_categories(["Order"]),
        ..LogRead::forward(1, usize::MAX)
    };
    let expected: Vec<RecordedEvent> = store
        .read_all(1, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.stream_id.starts_with("Order-"))
        .collect();
    assert_eq!(store.read_log(&read).await.unwrap(), expected);
    // The next append finds the log indexed up to 0, so it indexes all of it again.
    fill(&store, 1).await;
    let (up_to, by_category, _) = indexed(&db_path(&dir));
    assert_eq!((up_to, by_category), (301, 301));
    assert_eq!(
        store.read_log(&read).await.unwrap(),
        expected,
        "a Cart event was added"
    );
}
