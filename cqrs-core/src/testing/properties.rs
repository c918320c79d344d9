//! Property helpers: for any command sequence, replay rebuilds exactly what was decided live.
//!
//! Use them inside `proptest!` with a strategy for your commands:
//!
//! ```ignore
//! proptest! {
//!     #[test]
//!     fn cart_replays(commands in prop::collection::vec(cart_commands(), 0..40)) {
//!         block_on(check_replay::<Cart, _>(MemoryStore::new(), "c-1", commands))?;
//!     }
//! }
//! ```

use crate::aggregate::{Aggregate, DomainEvent};
use crate::codec;
use crate::metadata::Metadata;
use crate::repository::{Repository, RepositoryError};
use crate::snapshot::{SnapshotPolicy, SnapshotStore};
use crate::store::EventStore;
use crate::upcast::Upcasters;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::future::Future;

/// Runs a future to completion on a fresh single-threaded runtime (proptest bodies are sync).
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
        .block_on(future)
}

fn fail(context: &str, error: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(format!("{context}: {error}"))
}

/// Runs `commands` on aggregate `id` twice, live (folding each decision into a local state)
/// and through a repository on `store`, then checks that:
/// - each command gets the same decision (the same events, or a refusal) both ways;
/// - the state the repository rebuilds equals the live state, and rebuilding twice agrees;
/// - every stored event decodes to the event decided and re-encodes to the same payload.
pub async fn check_replay<A, S>(
    store: S,
    id: &str,
    commands: Vec<A::Command>,
) -> Result<(), TestCaseError>
where
    A: Aggregate + Clone + PartialEq + Debug,
    A::Event: PartialEq,
    A::Command: Debug,
    S: EventStore,
{
    let repository = Repository::<A, S>::new(store);
    let mut live = A::default();
    let mut decided = Vec::new();
    for (step, command) in commands.into_iter().enumerate() {
        let expected = live.handle(command.clone());
        let actual = repository.execute(id, command.clone()).await;
        match (expected, actual) {
            (Ok(events), Ok(committed)) => {
                let stored: Vec<&A::Event> = committed.events.iter().map(|e| &e.event).collect();
                prop_assert_eq!(
                    events.iter().collect::<Vec<_>>(),
                    stored,
                    "step {}: {:?}",
                    step,
                    command
                );
                for event in events {
                    live.apply(&event);
                    decided.push(event);
                }
            }
            (Err(expected), Err(RepositoryError::Domain(actual))) => {
                prop_assert_eq!(expected.to_string(), actual.to_string(), "step {}", step);
            }
            (expected, actual) => {
                return Err(TestCaseError::fail(format!(
                    "step {step} ({command:?}): live decided {expected:?}, repository {actual:?}"
                )));
            }
        }
    }
    let first = repository.load(id).await.map_err(|e| fail("load", e))?;
    let second = repository.load(id).await.map_err(|e| fail("reload", e))?;
    prop_assert_eq!(
        &first.state,
        &live,
        "replayed state differs from live state"
    );
    prop_assert_eq!(&first, &second, "two replays differ");
    prop_assert_eq!(first.version, decided.len() as u64);

    let stream_id = crate::aggregate::stream_id::<A>(id);
    let stored = repository
        .store()
        .read_stream(&stream_id, 1, usize::MAX)
        .await
        .map_err(|e| fail("read_stream", e))?;
    prop_assert_eq!(stored.len(), decided.len());
    for (recorded, event) in stored.iter().zip(&decided) {
        let decoded: A::Event =
            codec::decode(recorded, &Upcasters::new()).map_err(|e| fail("decode", e))?;
        prop_assert_eq!(&decoded, event);
        let again = codec::encode(&decoded, &Metadata::new()).map_err(|e| fail("encode", e))?;
        prop_assert_eq!(
            &again.payload,
            &recorded.payload,
            "re-encoding changed the payload"
        );
        prop_assert_eq!(again.event_type.as_str(), recorded.event_type.as_str());
    }
    Ok(())
}

/// Checks that one event survives encode/decode unchanged and encodes deterministically.
pub fn check_event_round_trip<E: DomainEvent + PartialEq>(event: &E) -> Result<(), TestCaseError> {
    let encoded = codec::encode(event, &Metadata::new()).map_err(|e| fail("encode", e))?;
    let recorded = crate::envelope::RecordedEvent {
        stream_id: "round-trip".to_owned(),
        version: 1,
        position: 1,
        event_id: encoded.event_id,
        event_type: encoded.event_type.clone(),
        schema_version: encoded.schema_version,
        payload: encoded.payload.clone(),
        metadata: Metadata::new(),
        recorded_at: crate::backend::recorded_now(),
    };
    let decoded: E = codec::decode(&recorded, &Upcasters::new()).map_err(|e| fail("decode", e))?;
    prop_assert_eq!(&decoded, event);
    let again = codec::encode(&decoded, &Metadata::new()).map_err(|e| fail("re-encode", e))?;
    prop_assert_eq!(again.payload, encoded.payload);
    Ok(())
}

/// Runs `commands` through a repository taking a snapshot every `every` events, then checks
/// that loading with snapshots equals loading without, now and at every past version (so
/// snapshot + tail equals full replay, and temporal loads ignore snapshots from their future).
pub async fn check_snapshots<A, S>(
    store: S,
    id: &str,
    commands: Vec<A::Command>,
    every: u64,
) -> Result<(), TestCaseError>
where
    A: Aggregate + Serialize + DeserializeOwned + PartialEq + Debug,
    S: EventStore + SnapshotStore + Clone,
{
    let with = Repository::<A, S>::new(store.clone()).with_snapshots(SnapshotPolicy::every(every));
    let without = Repository::<A, S>::new(store.clone());
    for command in commands {
        match with.execute(id, command).await {
            Ok(_) | Err(RepositoryError::Domain(_)) => {}
            Err(other) => return Err(fail("execute", other)),
        }
    }
    let loaded = with.load(id).await.map_err(|e| fail("load", e))?;
    let replayed = without.load(id).await.map_err(|e| fail("replay", e))?;
    prop_assert_eq!(
        &loaded,
        &replayed,
        "snapshot + tail differs from full replay"
    );
    let snapshot = store
        .load_snapshot(&crate::aggregate::stream_id::<A>(id))
        .await
        .map_err(|e| fail("load_snapshot", e))?;
    if loaded.version >= every {
        let snapshot = snapshot.ok_or_else(|| fail("snapshot", "none was taken"))?;
        prop_assert!(snapshot.version <= loaded.version);
    } else {
        prop_assert!(snapshot.is_none(), "a snapshot before {} events", every);
    }
    for version in 0..=loaded.version {
        let past = with
            .load_at_version(id, version)
            .await
            .map_err(|e| fail("load_at_version", e))?;
        let past_replayed = without
            .load_at_version(id, version)
            .await
            .map_err(|e| fail("load_at_version", e))?;
        prop_assert_eq!(past.version, version);
        prop_assert_eq!(&past, &past_replayed, "at version {}", version);
    }
    Ok(())
}
