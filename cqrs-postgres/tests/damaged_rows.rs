//! Rows damaged by hand (triggers and checks set aside, as a superuser could): every read
//! that meets the damage reports a typed `Corrupt` naming stream, version and position as
//! far as they can be read, never skipping the row or reading it as something else; other
//! streams read and append as before.

mod common;

use common::{raw_client, test_store, TestStore};
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::{EventStore, ExpectedVersion, LogRead, StoreError};

/// The damaged stream: versions 1, 2 and 3 at positions 1, 2 and 3.
const DAMAGED: &str = "s";
/// A stream that must not notice: versions 1 and 2 at positions 4 and 5.
const OTHER: &str = "other";

async fn store_with_streams() -> TestStore {
    let store = test_store().await;
    for (stream, count) in [(DAMAGED, 3), (OTHER, 2)] {
        let events = (0..count).map(|i| tagged_event(&i.to_string())).collect();
        store
            .append(stream, ExpectedVersion::NoStream, events)
            .await
            .unwrap();
    }
    store
}

/// Runs `change` on the store's events table with its triggers off and its checks dropped.
async fn damage(store: &TestStore, change: &str) {
    let table = format!("\"{}\".events", store.guard.schema);
    raw_client()
        .await
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             ALTER TABLE {table} DROP CONSTRAINT IF EXISTS events_schema_version_check;
             {}",
            change.replace("EVENTS", &table)
        ))
        .await
        .unwrap();
}

fn assert_corrupt(
    result: Result<impl std::fmt::Debug, StoreError>,
    version: u64,
    position: Option<u64>,
    reason: &str,
    read: &str,
) {
    match result {
        Err(StoreError::Corrupt {
            stream_id,
            version: v,
            position: p,
            reason: r,
        }) => {
            assert_eq!(
                (stream_id.as_str(), v, p),
                (DAMAGED, version, position),
                "{read}: {r}"
            );
            assert!(r.contains(reason), "{read}: {r}");
        }
        other => panic!("{read}: expected Corrupt, got {other:?}"),
    }
}

/// The other stream still reads and appends.
async fn others_unharmed(store: &TestStore) {
    assert_eq!(store.read_stream(OTHER, 1, 10).await.unwrap().len(), 2);
    store
        .append(
            OTHER,
            ExpectedVersion::Exact(2),
            vec![tagged_event("after")],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn damaged_columns_are_corrupt_in_every_read() {
    for (column, value, version, reason) in [
        ("metadata", "'not json'", 2, "metadata is not valid"),
        ("metadata", "'[\"correlation_id\"]'", 2, "not a JSON object"),
        (
            "schema_version",
            "-1",
            3,
            "schema version -1 is out of range",
        ),
        ("schema_version", "4294967296", 1, "out of range"),
    ] {
        let store = store_with_streams().await;
        damage(
            &store,
            &format!("UPDATE EVENTS SET {column} = {value} WHERE stream_id = 's' AND version = {version}"),
        )
        .await;
        let at = Some(version);
        assert_corrupt(
            store.read_stream(DAMAGED, 1, 10).await,
            version,
            at,
            reason,
            "read_stream",
        );
        assert_corrupt(
            store.read_stream_backward(DAMAGED, u64::MAX, 10).await,
            version,
            at,
            reason,
            "read_stream_backward",
        );
        assert_corrupt(store.read_all(1, 10).await, version, at, reason, "read_all");
        assert_corrupt(
            store.read_log(&LogRead::backward(u64::MAX, 10)).await,
            version,
            at,
            reason,
            "read_log backward",
        );
        let ids: Vec<_> = store
            .read_all(4, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(ids.len(), 2, "reads past the damage see the rest");
        others_unharmed(&store).await;
    }
}

#[tokio::test]
async fn a_missing_version_is_corrupt_in_reads_of_its_stream() {
    let store = store_with_streams().await;
    damage(
        &store,
        "DELETE FROM EVENTS WHERE stream_id = 's' AND version = 2",
    )
    .await;
    assert_corrupt(
        store.read_stream(DAMAGED, 1, 10).await,
        2,
        None,
        "version 2 is missing",
        "read_stream",
    );
    assert_corrupt(
        store.read_stream(DAMAGED, 2, 10).await,
        2,
        None,
        "is missing",
        "read_stream from 2",
    );
    assert_corrupt(
        store.read_stream_backward(DAMAGED, u64::MAX, 10).await,
        2,
        None,
        "is missing",
        "read_stream_backward",
    );
    assert_corrupt(
        store.read_stream_backward(DAMAGED, 2, 10).await,
        2,
        None,
        "is missing",
        "read_stream_backward from 2",
    );
    // Each remaining row is whole: the log reads them (positions 1, 3, 4, 5).
    let positions: Vec<u64> = store
        .read_all(1, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions, [1, 3, 4, 5]);
    others_unharmed(&store).await;
}

/// Visits, which decode rows in place, meet the damage as reads do: a missing version and
/// an out-of-range schema version are `Corrupt` with stream, version and position, never skipped.
#[tokio::test]
async fn visits_report_damage_like_reads() {
    let store = store_with_streams().await;
    let visit_stream = |from| {
        let store = &store;
        async move {
            store
                .visit_stream(DAMAGED, from, 10, &mut |_| {
                    std::ops::ControlFlow::Continue(())
                })
                .await
        }
    };
    let visit_log = || {
        let store = &store;
        async move {
            store
                .visit_log(&LogRead::forward(1, 10), &mut |_| {
                    std::ops::ControlFlow::Continue(())
                })
                .await
        }
    };
    let reason = "schema version -1 is out of range";
    damage(
        &store,
        "UPDATE EVENTS SET schema_version = -1 WHERE position = 2",
    )
    .await;
    assert_corrupt(visit_stream(1).await, 2, Some(2), reason, "visit_stream");
    assert_corrupt(visit_log().await, 2, Some(2), reason, "visit_log");
    damage(&store, "DELETE FROM EVENTS WHERE position = 2").await;
    assert_corrupt(
        visit_stream(1).await,
        2,
        None,
        "version 2 is missing",
        "visit_stream",
    );
    assert_eq!(visit_stream(3).await.unwrap(), 1, "from past the hole");
    assert_eq!(
        visit_log().await.unwrap(),
        4,
        "the log itself has no hole to report"
    );
    others_unharmed(&store).await;
}
