//! The repository on MemoryStore: commands, metadata, retries, snapshots, cache, temporal loads.

use async_trait::async_trait;
use cqrs_core::backend::recorded_now;
use cqrs_core::testing::toy::{AddZero, Tally, TallyCommand};
use cqrs_core::{
    Appended, EventStore, ExpectedVersion, LogRead, Metadata, NewEvent, RecordedEvent, Repository,
    RepositoryError, Snapshot, SnapshotPolicy, SnapshotStore, StoreError,
};
use cqrs_memory::MemoryStore;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// MemoryStore with counters and injectable failures, to observe what the repository does.
#[derive(Clone, Default)]
struct Instrumented {
    inner: MemoryStore,
    events_read: Arc<AtomicUsize>,
    appends_tried: Arc<AtomicUsize>,
    always_conflict: bool,
    snapshots_fail: bool,
}

#[async_trait]
impl EventStore for Instrumented {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        self.appends_tried.fetch_add(1, Ordering::SeqCst);
        if self.always_conflict {
            return Err(StoreError::WrongExpectedVersion {
                stream_id: stream_id.into(),
                expected,
                actual: Some(999),
            });
        }
        self.inner.append(stream_id, expected, events).await
    }
    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let page = self
            .inner
            .read_stream(stream_id, from_version, limit)
            .await?;
        self.events_read.fetch_add(page.len(), Ordering::SeqCst);
        Ok(page)
    }
    async fn read_stream_backward(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner
            .read_stream_backward(stream_id, from_version, limit)
            .await
    }
    async fn read_log(&self, read: &LogRead) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_log(read).await
    }
    async fn read_events_by_id(&self, ids: &[Uuid]) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_events_by_id(ids).await
    }
    async fn position_at(
        &self,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<u64>, StoreError> {
        self.inner.position_at(at).await
    }
    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        self.inner.stream_version(stream_id).await
    }
}

#[async_trait]
impl SnapshotStore for Instrumented {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        if self.snapshots_fail {
            return Err(StoreError::Backend("snapshot table unavailable".into()));
        }
        self.inner.save_snapshot(snapshot).await
    }
    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        self.inner.load_snapshot(stream_id).await
    }
}

async fn add_each(repository: &Repository<Tally, impl EventStore>, id: &str, amounts: &[i64]) {
    for n in amounts {
        repository.execute(id, TallyCommand::Add(*n)).await.unwrap();
    }
}

#[tokio::test]
async fn refused_or_empty_decisions_append_nothing() {
    let store = MemoryStore::new();
    let tallies = Repository::<Tally, _>::new(store.clone());
    add_each(&tallies, "t", &[5]).await;
    let refused = tallies
        .execute("t", TallyCommand::AddMany(vec![1, 0]))
        .await;
    assert!(
        matches!(refused, Err(RepositoryError::Domain(AddZero))),
        "{refused:?}"
    );
    let nothing = tallies.execute("t", TallyCommand::Nothing).await.unwrap();
    assert_eq!((nothing.version, nothing.events.len()), (1, 0));
    assert_eq!(store.read_all(1, 100).await.unwrap().len(), 1);
}

#[tokio::test]
async fn metadata_reaches_every_event_and_a_correlation_id_is_always_set() {
    let tallies = Repository::<Tally, _>::new(MemoryStore::new());
    let correlation = Uuid::new_v4();
    let metadata = Metadata::new()
        .with_correlation_id(correlation)
        .with("user", "ada");
    let committed = tallies
        .execute_with("t", TallyCommand::AddMany(vec![1, 2, 3]), metadata)
        .await
        .unwrap();
    assert_eq!(committed.version, 3);
    let versions: Vec<u64> = committed.events.iter().map(|e| e.version).collect();
    assert_eq!(versions, [1, 2, 3]);
    for envelope in &committed.events {
        assert_eq!(envelope.metadata.correlation_id, Some(correlation));
        assert_eq!(
            envelope.metadata.get("user").and_then(|v| v.as_str()),
            Some("ada")
        );
        assert_eq!(envelope.stream_id, "Tally-t");
    }
    let stored = tallies.store().read_stream("Tally-t", 1, 10).await.unwrap();
    assert!(stored
        .iter()
        .all(|e| e.metadata.correlation_id == Some(correlation)));

    let fresh = tallies.execute("t", TallyCommand::Add(4)).await.unwrap();
    let generated = fresh.events[0].metadata.correlation_id;
    assert!(generated.is_some() && generated != Some(correlation));
}

#[tokio::test]
async fn conflicts_are_retried_a_bounded_number_of_times_then_typed() {
    let store = Instrumented {
        always_conflict: true,
        ..Default::default()
    };
    let tallies = Repository::<Tally, _>::new(store.clone());
    match tallies.execute("t", TallyCommand::Add(1)).await {
        Err(RepositoryError::Conflict {
            stream_id,
            attempts,
            source: StoreError::WrongExpectedVersion { .. },
        }) => assert_eq!((stream_id.as_str(), attempts), ("Tally-t", 4)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        store.appends_tried.load(Ordering::SeqCst),
        4,
        "1 try + 3 default retries"
    );
    let once = Repository::<Tally, _>::new(store.clone()).with_conflict_retries(0);
    assert!(matches!(
        once.execute("t", TallyCommand::Add(1)).await,
        Err(RepositoryError::Conflict { attempts: 1, .. })
    ));
}

#[tokio::test]
async fn a_stale_aggregate_retries_on_the_events_that_won() {
    let store = MemoryStore::new();
    let first = Repository::<Tally, _>::new(store.clone()).with_cache(8);
    let second = Repository::<Tally, _>::new(store.clone()).with_cache(8);
    add_each(&first, "t", &[1]).await; // cached by `first` at version 1
    add_each(&second, "t", &[10, 100]).await; // `first`'s entry is now stale
    let committed = first.execute("t", TallyCommand::Add(1000)).await.unwrap();
    assert_eq!(committed.version, 4);
    let loaded = Repository::<Tally, _>::new(store).load("t").await.unwrap();
    assert_eq!(
        loaded.state,
        Tally {
            total: 1111,
            count: 4
        }
    );
}

#[tokio::test]
async fn a_cached_aggregate_reads_only_the_events_it_has_not_seen() {
    let store = Instrumented::default();
    let tallies = Repository::<Tally, _>::new(store.clone()).with_cache(8);
    add_each(&tallies, "hot", &[1; 50]).await;
    let reads_before = store.events_read.load(Ordering::SeqCst);
    add_each(&tallies, "hot", &[1]).await;
    assert_eq!(
        store.events_read.load(Ordering::SeqCst),
        reads_before,
        "replayed from cache"
    );

    // Without the cache every command replays the whole stream.
    let uncached = Repository::<Tally, _>::new(store.clone());
    let reads_before = store.events_read.load(Ordering::SeqCst);
    add_each(&uncached, "hot", &[1]).await;
    assert_eq!(store.events_read.load(Ordering::SeqCst) - reads_before, 51);
    // The cached repository now reads just that one foreign event.
    let reads_before = store.events_read.load(Ordering::SeqCst);
    add_each(&tallies, "hot", &[1]).await;
    assert_eq!(store.events_read.load(Ordering::SeqCst) - reads_before, 1);
    let loaded = tallies.load("hot").await.unwrap();
    assert_eq!(
        loaded.state,
        Tally {
            total: 53,
            count: 53
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_repositories_racing_on_one_aggregate_lose_no_update() {
    let store = MemoryStore::new();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let tallies = Repository::<Tally, _>::new(store.clone())
            .with_cache(4)
            .with_conflict_retries(1_000);
        for _ in 0..2 {
            let tallies = tallies.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    tallies
                        .execute("contested", TallyCommand::Add(1))
                        .await
                        .unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let loaded = Repository::<Tally, _>::new(store)
        .load("contested")
        .await
        .unwrap();
    assert_eq!(
        loaded.state,
        Tally {
            total: 200,
            count: 200
        }
    );
    assert_eq!(loaded.version, 200);
}

#[tokio::test]
async fn snapshots_are_taken_every_n_events_and_used_on_load() {
    let store = MemoryStore::new();
    let tallies =
        Repository::<Tally, _>::new(store.clone()).with_snapshots(SnapshotPolicy::every(5));
    add_each(&tallies, "t", &[1, 2, 3, 4]).await;
    assert_eq!(store.load_snapshot("Tally-t").await.unwrap(), None);
    add_each(&tallies, "t", &[5, 6]).await;
    let snapshot = store
        .load_snapshot("Tally-t")
        .await
        .unwrap()
        .expect("taken at 5");
    assert_eq!(snapshot.version, 5);
    assert_eq!(snapshot.state, r#"{"total":15,"count":5}"#);

    // Prove loads start from the snapshot: plant one whose state disagrees with the events.
    let planted = Snapshot {
        stream_id: "Tally-t".into(),
        version: 6,
        state_version: 1,
        state: r#"{"total":-1,"count":6}"#.into(),
        taken_at: recorded_now(),
    };
    store.save_snapshot(planted).await.unwrap();
    add_each(&Repository::<Tally, _>::new(store.clone()), "t", &[7]).await;
    let loaded = tallies.load("t").await.unwrap();
    assert_eq!(
        loaded.state,
        Tally { total: 6, count: 7 },
        "snapshot (-1) + tail (7)"
    );
}

#[tokio::test]
async fn snapshots_that_no_longer_fit_are_ignored_and_the_stream_replayed() {
    let store = MemoryStore::new();
    add_each(&Repository::<Tally, _>::new(store.clone()), "t", &[1, 2, 3]).await;
    let expected = Tally { total: 6, count: 3 };
    let cases = [
        (1, "{\"sum\": \"not a tally\""), // no longer decodes
        (1, r#"{"total":"six"}"#),        // decodes as JSON, not as the state
        (1, r#"{"total":-1,"count":3}"#), // fits, but is of state version 1
    ];
    for (i, (state_version, state)) in cases.into_iter().enumerate() {
        let stream = format!("t{i}");
        add_each(
            &Repository::<Tally, _>::new(store.clone()),
            &stream,
            &[1, 2, 3],
        )
        .await;
        store
            .save_snapshot(Snapshot {
                stream_id: format!("Tally-{stream}"),
                version: 3,
                state_version,
                state: state.into(),
                taken_at: recorded_now(),
            })
            .await
            .unwrap();
        let policy = SnapshotPolicy::every(100).state_version(2);
        let tallies = Repository::<Tally, _>::new(store.clone()).with_snapshots(policy);
        let loaded = tallies.load(&stream).await.unwrap();
        assert_eq!(
            loaded.state, expected,
            "case {i}: replayed, not the snapshot"
        );
        assert_eq!(loaded.version, 3);
    }
}

#[tokio::test]
async fn a_failing_snapshot_never_fails_the_command() {
    let store = Instrumented {
        snapshots_fail: true,
        ..Default::default()
    };
    let tallies =
        Repository::<Tally, _>::new(store.clone()).with_snapshots(SnapshotPolicy::every(1));
    let committed = tallies.execute("t", TallyCommand::Add(3)).await.unwrap();
    assert_eq!(committed.version, 1);
    assert_eq!(store.load_snapshot("Tally-t").await.unwrap(), None);
    assert_eq!(tallies.load("t").await.unwrap().state.total, 3);
}

#[tokio::test]
async fn aggregates_load_as_they_were_at_a_version_or_an_instant() {
    let tallies = Repository::<Tally, _>::new(MemoryStore::new());
    let before_everything = recorded_now();
    let mut instants = Vec::new();
    for n in [1, 10, 100] {
        let committed = tallies.execute("t", TallyCommand::Add(n)).await.unwrap();
        instants.push(committed.events[0].recorded_at);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let at = |version| tallies.load_at_version("t", version);
    assert_eq!(at(0).await.unwrap().state, Tally::default());
    assert_eq!(
        at(2).await.unwrap().state,
        Tally {
            total: 11,
            count: 2
        }
    );
    let past_the_end = at(99).await.unwrap();
    assert_eq!((past_the_end.version, past_the_end.state.total), (3, 111));

    let as_of = |instant| tallies.load_as_of("t", instant);
    assert_eq!(
        as_of(before_everything - chrono::Duration::seconds(1))
            .await
            .unwrap()
            .version,
        0
    );
    assert_eq!(as_of(instants[0]).await.unwrap().state.total, 1);
    assert_eq!(as_of(instants[1]).await.unwrap().state.total, 11);
    assert_eq!(as_of(recorded_now()).await.unwrap().version, 3);
}
