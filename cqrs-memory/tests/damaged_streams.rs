//! A stream is exactly versions 1..n: a store that returns a hole, a repeat, an out-of-order
//! event or version 0 makes every load and command of that stream fail with
//! `StoreError::Corrupt`, naming stream and version, and nothing is appended on top of it.

use async_trait::async_trait;
use cqrs_core::testing::toy::{Tally, TallyCommand};
use cqrs_core::{
    Appended, EventStore, ExpectedVersion, LogRead, NewEvent, RecordedEvent, Repository,
    RepositoryError, Snapshot, SnapshotPolicy, SnapshotStore, StoreError,
};
use cqrs_memory::MemoryStore;
use std::sync::{Arc, Mutex, PoisonError};
use uuid::Uuid;

/// What the damaged store does to the event at one version in every page it returns.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Damage {
    /// The event is left out.
    Hole,
    /// The event comes twice in a row.
    Repeat,
    /// The event comes after the one that follows it.
    OutOfOrder,
    /// The event claims version 0.
    VersionZero,
}

const EVERY_DAMAGE: [Damage; 4] = [
    Damage::Hole,
    Damage::Repeat,
    Damage::OutOfOrder,
    Damage::VersionZero,
];

/// MemoryStore whose stream reads come back damaged at one version, once damage is set.
#[derive(Clone, Default)]
struct Damaged {
    inner: MemoryStore,
    damage: Arc<Mutex<Option<(Damage, u64)>>>,
}

impl Damaged {
    fn damage(&self, damage: Damage, at: u64) {
        *self.damage.lock().unwrap_or_else(PoisonError::into_inner) = Some((damage, at));
    }

    fn spoil(&self, mut page: Vec<RecordedEvent>) -> Vec<RecordedEvent> {
        let Some((damage, at)) = *self.damage.lock().unwrap_or_else(PoisonError::into_inner) else {
            return page;
        };
        let Some(index) = page.iter().position(|event| event.version == at) else {
            return page;
        };
        match damage {
            Damage::Hole => {
                page.remove(index);
            }
            Damage::Repeat => page.insert(index, page[index].clone()),
            Damage::OutOfOrder if index + 1 < page.len() => page.swap(index, index + 1),
            Damage::OutOfOrder => {}
            Damage::VersionZero => page[index].version = 0,
        }
        page
    }
}

#[async_trait]
impl EventStore for Damaged {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
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
        Ok(self.spoil(page))
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
impl SnapshotStore for Damaged {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.inner.save_snapshot(snapshot).await
    }
    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        self.inner.load_snapshot(stream_id).await
    }
}

/// Adds 1, `times` times, one command each.
async fn add_ones(tallies: &Repository<Tally, Damaged>, times: usize) {
    for _ in 0..times {
        tallies.execute("t", TallyCommand::Add(1)).await.unwrap();
    }
}

/// Asserts a `Corrupt` error on stream `Tally-t` at `version`.
fn assert_corrupt<T: std::fmt::Debug>(
    result: Result<T, RepositoryError<cqrs_core::testing::toy::AddZero>>,
    version: u64,
    what: &str,
) {
    match result {
        Err(RepositoryError::Store(StoreError::Corrupt {
            stream_id,
            version: named,
            ..
        })) => assert_eq!((stream_id.as_str(), named), ("Tally-t", version), "{what}"),
        other => panic!("{what}: expected Corrupt at version {version}, got {other:?}"),
    }
}

/// The version the error names: the one read where it does not belong, or for an event
/// missing from its place (a hole, or one that comes late), the missing one.
fn named_version(damage: Damage, at: u64) -> u64 {
    match damage {
        Damage::VersionZero => 0,
        Damage::Hole | Damage::Repeat | Damage::OutOfOrder => at,
    }
}

/// Load and execute both fail, and the stream keeps its version.
async fn assert_refused(tallies: &Repository<Tally, Damaged>, damage: Damage, at: u64) {
    let store = tallies.store();
    let before = store.stream_version("Tally-t").await.unwrap();
    let version = named_version(damage, at);
    assert_corrupt(
        tallies.load("t").await,
        version,
        &format!("load, {damage:?}"),
    );
    assert_corrupt(
        tallies.execute("t", TallyCommand::Add(1)).await,
        version,
        &format!("execute, {damage:?}"),
    );
    assert_eq!(
        store.stream_version("Tally-t").await.unwrap(),
        before,
        "nothing appended on {damage:?}"
    );
}

#[tokio::test]
async fn a_damaged_stream_fails_load_and_execute_and_nothing_is_appended() {
    for damage in EVERY_DAMAGE {
        let store = Damaged::default();
        let tallies = Repository::<Tally, _>::new(store.clone());
        add_ones(&tallies, 5).await;
        store.damage(damage, 3);
        assert_refused(&tallies, damage, 3).await;
    }
}

#[tokio::test]
async fn a_damaged_first_event_is_caught_too() {
    for damage in EVERY_DAMAGE {
        let store = Damaged::default();
        let tallies = Repository::<Tally, _>::new(store.clone());
        add_ones(&tallies, 2).await;
        store.damage(damage, 1);
        assert_refused(&tallies, damage, 1).await;
    }
}

#[tokio::test]
async fn the_tail_after_a_snapshot_must_continue_from_its_version() {
    for damage in EVERY_DAMAGE {
        let store = Damaged::default();
        let tallies =
            Repository::<Tally, _>::new(store.clone()).with_snapshots(SnapshotPolicy::every(4));
        add_ones(&tallies, 7).await; // a snapshot at 4, the tail 5..7
        assert_eq!(
            store
                .load_snapshot("Tally-t")
                .await
                .unwrap()
                .unwrap()
                .version,
            4
        );
        store.damage(damage, 5);
        assert_refused(&tallies, damage, 5).await;
    }
}

#[tokio::test]
async fn a_snapshot_beyond_the_end_of_its_stream_is_corrupt() {
    let store = Damaged::default();
    let tallies =
        Repository::<Tally, _>::new(store.clone()).with_snapshots(SnapshotPolicy::every(4));
    add_ones(&tallies, 4).await; // a snapshot at 4, no tail
    store.damage(Damage::Hole, 4); // the stream now seems to end at 3
    assert_refused(&tallies, Damage::Hole, 4).await;
}

#[tokio::test]
async fn a_cached_aggregate_catching_up_over_damage_is_refused() {
    for damage in EVERY_DAMAGE {
        let store = Damaged::default();
        let cached = Repository::<Tally, _>::new(store.clone()).with_cache(8);
        add_ones(&cached, 3).await; // cached at version 3
        let other_writer = Repository::<Tally, _>::new(store.clone());
        add_ones(&other_writer, 3).await; // 4..6, unseen by the cache
        store.damage(damage, 4);
        let version = named_version(damage, 4);
        assert_corrupt(
            cached.execute("t", TallyCommand::Add(1)).await,
            version,
            &format!("cached execute, {damage:?}"),
        );
        assert_eq!(store.stream_version("Tally-t").await.unwrap(), Some(6));
    }
}

#[tokio::test]
async fn every_damage_is_described_in_the_error() {
    let cases = [
        (
            Damage::Hole,
            "version 3 is unreadable: missing: version 4 was read in its place",
        ),
        (
            Damage::Repeat,
            "version 3 (position 3) is unreadable: read after version 3: a repeated",
        ),
        (
            Damage::OutOfOrder,
            "version 3 is unreadable: missing: version 4 was read in its place",
        ),
        (
            Damage::VersionZero,
            "version 0 (position 3) is unreadable: stream versions start at 1",
        ),
    ];
    for (damage, expected) in cases {
        let store = Damaged::default();
        let tallies = Repository::<Tally, _>::new(store.clone());
        add_ones(&tallies, 5).await;
        store.damage(damage, 3);
        let message = tallies.load("t").await.unwrap_err().to_string();
        assert!(
            message.contains("stream `Tally-t`") && message.contains(expected),
            "{damage:?}: {message}"
        );
    }
}
