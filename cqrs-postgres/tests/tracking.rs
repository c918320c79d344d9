//! Tracking batches across stores: two `PostgresStore`s on one schema (two processes'
//! worth: two appenders, two pools, separate transactions) race batches reacting to the
//! same events of one subscription. Each event's reaction commits exactly once; the others
//! are `CheckpointPassed` and append nothing. Retries of a parked event raced the same
//! way, with a discard racing them, take the entry exactly once.

mod common;

use common::SchemaGuard;
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::tracking::{AppendBatch, TrackingStore};
use cqrs_core::{
    CheckpointStore, EventStore, ExpectedVersion, ParkedEvent, ParkingStore, StoreError,
};
use cqrs_postgres::PostgresStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_raced_from_two_stores_commit_once_per_event() {
    let guard = SchemaGuard::new();
    let stores = [
        PostgresStore::connect_with(guard.options()).await.unwrap(),
        PostgresStore::connect_with(guard.options()).await.unwrap(),
    ];
    const EVENTS: u64 = 20;
    const RACERS: usize = 3;
    for position in 1..=EVENTS {
        let racers: Vec<_> = (0..2 * RACERS)
            .map(|racer| {
                let store = stores[racer % 2].clone();
                tokio::spawn(async move {
                    let batch = AppendBatch::new()
                        .append(
                            "Reactions-1",
                            ExpectedVersion::Any,
                            vec![tagged_event(&format!("{position}/{racer}"))],
                        )
                        .append(
                            format!("Side-{racer}"),
                            ExpectedVersion::Any,
                            vec![tagged_event("side")],
                        )
                        .tracking("reactor", position);
                    store.append_batch(batch).await
                })
            })
            .collect();
        let mut committed = 0;
        for racer in racers {
            match racer.await.unwrap() {
                Ok(appended) => {
                    committed += 1;
                    assert_eq!(appended.len(), 2);
                }
                Err(StoreError::CheckpointPassed { checkpoint, .. }) => {
                    assert_eq!(checkpoint, position, "refused by the one that committed");
                }
                Err(other) => panic!("position {position}: {other:?}"),
            }
        }
        assert_eq!(committed, 1, "reactions to position {position}");
    }
    for store in &stores {
        assert_eq!(store.load_checkpoint("reactor").await.unwrap(), EVENTS);
    }
    // One event per reaction in the shared stream, and one in the committer's own stream.
    let log = stores[0].read_all(1, 1_000).await.unwrap();
    assert_eq!(log.len() as u64, 2 * EVENTS);
    let shared = stores[1]
        .read_stream("Reactions-1", 1, 1_000)
        .await
        .unwrap();
    let versions: Vec<u64> = shared.iter().map(|e| e.version).collect();
    assert_eq!(versions.len() as u64, versions.last().copied().unwrap_or(0));
    drop(stores);
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_of_a_parked_event_raced_from_two_stores_take_it_once() {
    let guard = SchemaGuard::new();
    let stores = [
        PostgresStore::connect_with(guard.options()).await.unwrap(),
        PostgresStore::connect_with(guard.options()).await.unwrap(),
    ];
    const ENTRIES: u64 = 12;
    let mut retried = 0;
    for position in 1..=ENTRIES {
        let parked = ParkedEvent {
            subscription: "reactor".to_owned(),
            position,
            event_id: uuid::Uuid::new_v4(),
            stream_id: "Source-1".to_owned(),
            version: position,
            event_type: "Tagged".to_owned(),
            error: "boom".to_owned(),
            attempts: 5,
            parked_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap(),
        };
        stores[0].park(parked).await.unwrap();
        let racers: Vec<_> = (0..4)
            .map(|racer| {
                let store = stores[racer % 2].clone();
                tokio::spawn(async move {
                    let batch = AppendBatch::new().append(
                        "Retried-1",
                        ExpectedVersion::Any,
                        vec![tagged_event(&format!("{position}/{racer}"))],
                    );
                    store
                        .append_batch_unparking(batch, "reactor", position)
                        .await
                })
            })
            .collect();
        let discard = {
            let store = stores[1].clone();
            tokio::spawn(async move { store.unpark("reactor", position).await })
        };
        let mut taken = 0;
        for racer in racers {
            match racer.await.unwrap() {
                Ok(_) => {
                    taken += 1;
                    retried += 1;
                }
                Err(StoreError::NotParked { .. }) => {}
                Err(other) => panic!("position {position}: {other:?}"),
            }
        }
        if discard.await.unwrap().unwrap() {
            taken += 1;
        }
        assert_eq!(taken, 1, "the entry at {position} taken once");
        assert!(stores[1].parked("reactor").await.unwrap().is_empty());
    }
    // One event per retry that took its entry, none for a discard.
    let log = stores[0].read_all(1, 1_000).await.unwrap();
    assert_eq!(log.len(), retried);
    drop(stores);
    drop(guard);
}
