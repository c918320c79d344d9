//! `MemoryStore`: the in-process event store, for tests, prototypes and caches.
//!
//! It keeps the same contract as the durable stores (it passes the same conformance suite),
//! so an application can start here and move to `cqrs-sqlite` without changing code.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_core::backend::{check_limit, check_log_read, recording_time, validate_stream_id};
use cqrs_core::{
    visit_each, Appended, CheckpointStore, Direction, EventStore, ExpectedVersion, LogRead,
    NewEvent, RecordedEvent, Snapshot, SnapshotStore, StoreError, Visitor,
};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use tokio::sync::watch;
use uuid::Uuid;

/// An event store held in memory; clones share the same events.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    log: Arc<RwLock<Log>>,
    snapshots: Arc<RwLock<HashMap<String, Snapshot>>>,
    checkpoints: Arc<RwLock<HashMap<String, u64>>>,
    /// The position of the latest append, for subscriptions to wake on.
    appended: Arc<watch::Sender<u64>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            log: Arc::default(),
            snapshots: Arc::default(),
            checkpoints: Arc::default(),
            appended: Arc::new(watch::channel(0).0),
        }
    }
}

#[derive(Debug, Default)]
struct Log {
    /// Every event in global order: position `p` is at index `p - 1`.
    events: Vec<RecordedEvent>,
    /// Indices into `events`, per stream, in version order.
    streams: HashMap<String, Vec<usize>>,
    /// The index into `events` of each event id.
    event_ids: HashMap<Uuid, usize>,
}

impl Log {
    /// Up to `limit` events of a stream from version `from` on, oldest first.
    fn stream(
        &self,
        stream_id: &str,
        from: u64,
        limit: usize,
    ) -> impl Iterator<Item = &RecordedEvent> {
        let indices = self.streams.get(stream_id).map_or(&[][..], Vec::as_slice);
        let start = usize::try_from(from.saturating_sub(1)).unwrap_or(usize::MAX);
        let indices = indices.get(start..).unwrap_or_default();
        indices.iter().take(limit).map(|&i| &self.events[i])
    }

    /// The events `read` asks for, in its order: a walk from `read.from` in its direction,
    /// testing each event against the filter (in memory a scan costs little next to
    /// keeping an index per type and category).
    fn walk<'a>(&'a self, read: &'a LogRead) -> Box<dyn Iterator<Item = &'a RecordedEvent> + 'a> {
        let taken = |event: &&RecordedEvent| {
            read.filter.is_all() || read.filter.matches(&event.stream_id, &event.event_type)
        };
        // Position `p` is at index `p - 1`.
        match read.direction {
            Direction::Forward => {
                let start = usize::try_from(read.from.saturating_sub(1)).unwrap_or(usize::MAX);
                let after = self.events.get(start..).unwrap_or_default();
                Box::new(after.iter().filter(taken).take(read.limit))
            }
            Direction::Backward => {
                let end = usize::try_from(read.from)
                    .unwrap_or(usize::MAX)
                    .min(self.events.len());
                Box::new(
                    self.events[..end]
                        .iter()
                        .rev()
                        .filter(taken)
                        .take(read.limit),
                )
            }
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while the lock is held can only happen before the log is touched (every
    // check runs first), so a poisoned log is still consistent.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Log> {
        self.log.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Log> {
        self.log.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        validate_stream_id(stream_id)?;
        let mut log = self.write();
        let log = &mut *log;
        let current = log.streams.get(stream_id).map(|s| s.len() as u64);
        expected.check(stream_id, current)?;
        let mut batch_ids = HashSet::with_capacity(events.len());
        for event in &events {
            if log.event_ids.contains_key(&event.event_id) || !batch_ids.insert(event.event_id) {
                return Err(StoreError::DuplicateEventId {
                    stream_id: stream_id.to_owned(),
                    event_id: event.event_id,
                });
            }
        }
        let version = current.unwrap_or(0);
        if events.is_empty() {
            return Ok(Appended {
                version,
                events: Vec::new(),
            });
        }
        // Under the write lock, after the last event's time: never earlier than it.
        let recorded_at = recording_time(log.events.last().map(|last| last.recorded_at));
        let first = log.events.len();
        let mut appended = Vec::with_capacity(events.len());
        for (offset, event) in events.into_iter().enumerate() {
            let recorded = event.into_recorded(
                stream_id,
                version + offset as u64 + 1,
                (first + offset) as u64 + 1,
                recorded_at,
            );
            log.event_ids.insert(recorded.event_id, first + offset);
            appended.push(recorded.clone());
            log.events.push(recorded);
        }
        let added = first..log.events.len();
        // The stream id is copied only for a new stream, not on every append.
        match log.streams.get_mut(stream_id) {
            Some(indices) => indices.extend(added),
            None => {
                log.streams.insert(stream_id.to_owned(), added.collect());
            }
        }
        self.appended.send_replace(log.events.len() as u64);
        Ok(Appended {
            version: version + appended.len() as u64,
            events: appended,
        })
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        check_limit(limit)?;
        let log = self.read();
        Ok(log
            .stream(stream_id, from_version, limit)
            .cloned()
            .collect())
    }

    async fn visit_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<usize, StoreError> {
        check_limit(limit)?;
        let log = self.read();
        Ok(visit_each(
            log.stream(stream_id, from_version, limit),
            visit,
        ))
    }

    async fn read_stream_backward(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        check_limit(limit)?;
        let log = self.read();
        let Some(indices) = log.streams.get(stream_id) else {
            return Ok(Vec::new());
        };
        let end = usize::try_from(from_version)
            .unwrap_or(usize::MAX)
            .min(indices.len());
        Ok(indices[..end]
            .iter()
            .rev()
            .take(limit)
            .map(|&i| log.events[i].clone())
            .collect())
    }

    /// Walks the log from `read.from` in its direction, testing each event against the
    /// filter: in memory a scan costs little next to keeping an index per type and category.
    async fn read_log(&self, read: &LogRead) -> Result<Vec<RecordedEvent>, StoreError> {
        check_log_read(read)?;
        let log = self.read();
        Ok(log.walk(read).cloned().collect())
    }

    async fn visit_log(
        &self,
        read: &LogRead,
        visit: &mut Visitor<'_>,
    ) -> Result<usize, StoreError> {
        check_log_read(read)?;
        let log = self.read();
        Ok(visit_each(log.walk(read), visit))
    }

    async fn read_events_by_id(
        &self,
        event_ids: &[Uuid],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let log = self.read();
        let found: BTreeSet<usize> = event_ids
            .iter()
            .filter_map(|id| log.event_ids.get(id).copied())
            .collect();
        Ok(found.into_iter().map(|i| log.events[i].clone()).collect())
    }

    /// A binary search: `recorded_at` never decreases along the log.
    async fn position_at(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
        let log = self.read();
        let index = log.events.partition_point(|event| event.recorded_at < at);
        Ok(log.events.get(index).map(|event| event.position))
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.read().streams.get(stream_id).map(|s| s.len() as u64))
    }

    fn appends(&self) -> Option<cqrs_core::PositionWatch> {
        Some(self.appended.subscribe())
    }
}

#[async_trait]
impl CheckpointStore for MemoryStore {
    async fn load_checkpoint(&self, subscription: &str) -> Result<u64, StoreError> {
        let checkpoints = self
            .checkpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(checkpoints.get(subscription).copied().unwrap_or(0))
    }

    async fn save_checkpoint(&self, subscription: &str, position: u64) -> Result<(), StoreError> {
        self.checkpoints
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(subscription.to_owned(), position);
        Ok(())
    }
}

#[async_trait]
impl SnapshotStore for MemoryStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let mut snapshots = self
            .snapshots
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match snapshots.get(&snapshot.stream_id) {
            Some(kept) if kept.version >= snapshot.version => {}
            _ => {
                snapshots.insert(snapshot.stream_id.clone(), snapshot);
            }
        }
        Ok(())
    }

    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        let snapshots = self
            .snapshots
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(snapshots.get(stream_id).cloned())
    }
}
