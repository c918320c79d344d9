//! Snapshots: an aggregate's state saved every N events, so a load replays only the tail.

use crate::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// A serialized aggregate state at a stream version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The stream the state was folded from.
    pub stream_id: String,
    /// The stream version the state includes (every event up to and including it).
    pub version: u64,
    /// The state's schema version when it was taken; a snapshot of another is ignored.
    pub state_version: u32,
    /// The state as JSON text.
    pub state: String,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
}

/// Where a backend keeps snapshots: the latest one per stream.
///
/// Snapshots are a cache of the events, never a source of truth: a backend may lose them
/// and loading stays correct (it replays the stream).
#[async_trait]
pub trait SnapshotStore: Send + Sync + 'static {
    /// Keeps `snapshot` as its stream's latest, unless a snapshot at a higher version is
    /// already kept (concurrent writers may save out of order).
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError>;

    /// The stream's latest snapshot, if any.
    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError>;
}

#[async_trait]
impl<S: SnapshotStore + ?Sized> SnapshotStore for Arc<S> {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        (**self).save_snapshot(snapshot).await
    }

    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        (**self).load_snapshot(stream_id).await
    }
}

/// When a repository takes snapshots, and which state schema it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    pub(crate) every: u64,
    pub(crate) state_version: u32,
}

impl SnapshotPolicy {
    /// A snapshot each time a command takes the stream past a multiple of `events`
    /// (at least 1), for state schema version 1.
    pub fn every(events: u64) -> Self {
        Self {
            every: events.max(1),
            state_version: 1,
        }
    }

    /// Raise it whenever the state's serialized shape changes: older snapshots are then
    /// ignored and their streams replayed from the start.
    pub fn state_version(mut self, version: u32) -> Self {
        self.state_version = version;
        self
    }

    /// Whether moving the stream from `before` to `after` crosses a multiple of `every`.
    pub(crate) fn is_due(&self, before: u64, after: u64) -> bool {
        before / self.every < after / self.every
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_due_when_a_multiple_is_crossed() {
        let policy = SnapshotPolicy::every(10);
        assert!(!policy.is_due(0, 9));
        assert!(policy.is_due(9, 10));
        assert!(policy.is_due(8, 12));
        assert!(!policy.is_due(10, 19));
        assert!(policy.is_due(19, 31));
        assert!(
            SnapshotPolicy::every(0).is_due(4, 5),
            "every(0) means every event"
        );
    }
}
