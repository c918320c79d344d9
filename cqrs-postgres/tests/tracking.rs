//! Tracking batches across stores: two `PostgresStore`s on one schema (two processes'
//! worth: two appenders, two pools, separate transactions) race batches reacting to the
//! same events of one subscription. Each event's reaction commits exactly once; the others
//! are `CheckpointPassed` and append nothing.

mod common;

use common::SchemaGuard;
use cqrs_core::testing::toy::tagged_event;
use cqrs_core::tracking::{AppendBatch, TrackingStore};
use cqrs_core::{CheckpointStore, EventStore, ExpectedVersion, StoreError};
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
