//! Values past the largest integer SQLite holds (`i64::MAX`): refused with a typed error
//! when they are to be stored, never clamped to one that would read back as another; read
//! bounds past it mean "nothing" below and "to the end" above.

use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{
    CheckpointStore, EventStore, ExpectedVersion, Snapshot, SnapshotStore, StoreError,
};
use cqrs_sqlite::{SqliteError, SqliteStore};
use rusqlite::Connection;
use uuid::Uuid;

/// `i64::MAX`, the largest position SQLite can give, as the store's positions are typed.
const LARGEST: u64 = 9_223_372_036_854_775_807;

fn assert_invalid(result: Result<(), StoreError>, expected: &str) {
    match result {
        Err(StoreError::InvalidArgument { argument, reason }) => {
            assert_eq!(argument, expected);
            assert!(reason.contains(&u64::MAX.to_string()), "{reason}");
        }
        other => panic!("expected InvalidArgument `{expected}`, got {other:?}"),
    }
}

#[tokio::test]
async fn checkpoints_and_snapshots_past_the_largest_integer_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db"))
        .await
        .unwrap();
    assert_invalid(store.save_checkpoint("sub", u64::MAX).await, "position");
    assert_eq!(
        store.load_checkpoint("sub").await.unwrap(),
        0,
        "nothing stored"
    );
    store.save_checkpoint("sub", LARGEST).await.unwrap();
    assert_eq!(store.load_checkpoint("sub").await.unwrap(), LARGEST);

    let snapshot = Snapshot {
        stream_id: "s".into(),
        version: u64::MAX,
        state_version: 1,
        state: "{}".into(),
        taken_at: cqrs_core::backend::recorded_now(),
    };
    assert_invalid(store.save_snapshot(snapshot).await, "snapshot");
    assert_eq!(store.load_snapshot("s").await.unwrap(), None);
}

#[tokio::test]
async fn past_the_largest_position_appends_fail_and_reads_find_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .append("s", ExpectedVersion::NoStream, vec![tagged_event("a")])
        .await
        .unwrap();
    // The largest position taken, as a file written for years, or by hand, may have it.
    Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO events (position, stream_id, version, event_id, event_type, \
             schema_version, payload, metadata, recorded_at) \
             VALUES (?1, 'far', 1, ?2, 'Tagged', 1, '{}', '{}', 0)",
            rusqlite::params![i64::MAX, Uuid::new_v4().as_bytes().as_slice()],
        )
        .unwrap();

    match store
        .append("s", ExpectedVersion::Exact(1), vec![tagged_event("b")])
        .await
    {
        Err(StoreError::Backend(source)) => match source.downcast_ref::<SqliteError>() {
            Some(SqliteError::OutOfRange { what, value }) => {
                assert_eq!(*what, "next position");
                assert_eq!(*value, (u128::from(LARGEST) + 1).to_string());
            }
            other => panic!("expected OutOfRange, got {other:?}"),
        },
        other => panic!("expected a typed error, got {other:?}"),
    }
    assert_eq!(store.stream_version("s").await.unwrap(), Some(1));

    let far = store.read_all(LARGEST, 10).await.unwrap();
    assert_eq!(
        far.iter().map(|e| e.position).collect::<Vec<_>>(),
        [LARGEST]
    );
    for from in [LARGEST + 1, u64::MAX] {
        assert!(store.read_all(from, 10).await.unwrap().is_empty(), "{from}");
        assert!(store.read_stream("far", from, 10).await.unwrap().is_empty());
    }
    let backward = store
        .read_stream_backward("far", u64::MAX, usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        backward.len(),
        1,
        "an upper bound past the largest means the end"
    );
}
