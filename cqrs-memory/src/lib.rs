//! `MemoryStore`: the in-process event store, for tests, prototypes and caches.
//!
//! It keeps the same contract as the durable stores (it passes the same conformance suite),
//! so an application can start here and move to `cqrs-sqlite` without changing code.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_core::backend::{check_limit, check_log_read, recording_time, validate_stream_id};
use cqrs_core::parking::not_parked;
use cqrs_core::tracking::{
    check_passed, check_tracking, check_untracked, AppendBatch, StreamAppend, TrackingStore,
};
use cqrs_core::{
    visit_each, Appended, CheckpointStore, Direction, EventStore, ExpectedVersion, LogRead,
    NewEvent, ParkedEvent, ParkingStore, RecordedEvent, Snapshot, SnapshotStore, StoreError,
    Visitor,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use tokio::sync::watch;
use uuid::Uuid;

/// An event store held in memory; clones share the same events.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    log: Arc<RwLock<Log>>,
    snapshots: Arc<RwLock<HashMap<String, Snapshot>>>,
    checkpoints: Arc<RwLock<HashMap<String, u64>>>,
    /// Parked events by subscription and position.
    parked: Arc<RwLock<BTreeMap<(String, u64), ParkedEvent>>>,
    /// The position of the latest append, for subscriptions to wake on.
    appended: Arc<watch::Sender<u64>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            log: Arc::default(),
            snapshots: Arc::default(),
            checkpoints: Arc::default(),
            parked: Arc::default(),
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

    fn parked_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<(String, u64), ParkedEvent>> {
        self.parked.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the appends of a batch in order, all or none, and signals what they added.
    fn append_all(
        &self,
        log: &mut Log,
        appends: Vec<StreamAppend>,
    ) -> Result<Vec<Appended>, StoreError> {
        let first = log.events.len();
        let recorded_at = log.recording_time();
        let mut outcomes = Vec::with_capacity(appends.len());
        for append in appends {
            match log.append(
                &append.stream_id,
                append.expected,
                append.events,
                recorded_at,
            ) {
                Ok(appended) => outcomes.push(appended),
                Err(refusal) => {
                    log.truncate(first);
                    return Err(refusal);
                }
            }
        }
        if log.events.len() > first {
            self.appended.send_replace(log.events.len() as u64);
        }
        Ok(outcomes)
    }
}

impl Log {
    /// Appends `events` to `stream_id` if `expected` holds and every id is free, all stamped
    /// `recorded_at`; changes nothing when it refuses.
    fn append(
        &mut self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        recorded_at: DateTime<Utc>,
    ) -> Result<Appended, StoreError> {
        validate_stream_id(stream_id)?;
        let current = self.streams.get(stream_id).map(|s| s.len() as u64);
        expected.check(stream_id, current)?;
        let mut batch_ids = HashSet::with_capacity(events.len());
        for event in &events {
            if self.event_ids.contains_key(&event.event_id) || !batch_ids.insert(event.event_id) {
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
        let first = self.events.len();
        let mut appended = Vec::with_capacity(events.len());
        for (offset, event) in events.into_iter().enumerate() {
            let recorded = event.into_recorded(
                stream_id,
                version + offset as u64 + 1,
                (first + offset) as u64 + 1,
                recorded_at,
            );
            self.event_ids.insert(recorded.event_id, first + offset);
            appended.push(recorded.clone());
            self.events.push(recorded);
        }
        let added = first..self.events.len();
        // The stream id is copied only for a new stream, not on every append.
        match self.streams.get_mut(stream_id) {
            Some(indices) => indices.extend(added),
            None => {
                self.streams.insert(stream_id.to_owned(), added.collect());
            }
        }
        Ok(Appended {
            version: version + appended.len() as u64,
            events: appended,
        })
    }

    /// Removes every event from position `first + 1` on: what a refused batch appended.
    fn truncate(&mut self, first: usize) {
        for removed in self.events.drain(first..) {
            self.event_ids.remove(&removed.event_id);
            if let Some(indices) = self.streams.get_mut(&removed.stream_id) {
                indices.retain(|&index| index < first);
                if indices.is_empty() {
                    self.streams.remove(&removed.stream_id);
                }
            }
        }
    }

    /// The time an append made now is recorded at: never before the last event's.
    fn recording_time(&self) -> DateTime<Utc> {
        recording_time(self.events.last().map(|last| last.recorded_at))
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
        let mut log = self.write();
        // Under the write lock, after the last event's time: never earlier than it.
        let recorded_at = log.recording_time();
        let appended = log.append(stream_id, expected, events, recorded_at)?;
        if !appended.events.is_empty() {
            self.appended.send_replace(log.events.len() as u64);
        }
        Ok(appended)
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

    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let checkpoints = self
            .checkpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut listed: Vec<_> = checkpoints
            .iter()
            .map(|(name, position)| (name.clone(), *position))
            .collect();
        listed.sort();
        Ok(listed)
    }
}

/// The log and the checkpoints are locked together (log first, as nowhere else takes both),
/// so the batch and its checkpoint change as one.
#[async_trait]
impl TrackingStore for MemoryStore {
    async fn append_batch(&self, batch: AppendBatch) -> Result<Vec<Appended>, StoreError> {
        check_tracking(batch.tracking.as_ref())?;
        let mut log = self.write();
        let mut checkpoints = self
            .checkpoints
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(tracking) = &batch.tracking {
            let stored = checkpoints.get(&tracking.subscription).copied();
            check_passed(tracking, stored.unwrap_or(0))?;
        }
        let outcomes = self.append_all(&mut log, batch.appends)?;
        if let Some(tracking) = batch.tracking {
            checkpoints.insert(tracking.subscription, tracking.position);
        }
        Ok(outcomes)
    }

    /// The log and the parked events are locked together (log first), so the batch and
    /// the entry's removal change as one.
    async fn append_batch_unparking(
        &self,
        batch: AppendBatch,
        subscription: &str,
        position: u64,
    ) -> Result<Vec<Appended>, StoreError> {
        check_untracked(&batch)?;
        let mut log = self.write();
        let mut parked = self.parked_mut();
        let key = (subscription.to_owned(), position);
        if !parked.contains_key(&key) {
            return Err(not_parked(subscription, position));
        }
        let outcomes = self.append_all(&mut log, batch.appends)?;
        parked.remove(&key);
        Ok(outcomes)
    }
}

#[async_trait]
impl ParkingStore for MemoryStore {
    async fn park(&self, parked: ParkedEvent) -> Result<(), StoreError> {
        let key = (parked.subscription.clone(), parked.position);
        self.parked_mut().insert(key, parked);
        Ok(())
    }

    async fn parked(&self, subscription: &str) -> Result<Vec<ParkedEvent>, StoreError> {
        let parked = self.parked.read().unwrap_or_else(PoisonError::into_inner);
        let from = (subscription.to_owned(), 0);
        Ok(parked
            .range(from..)
            .take_while(|((name, _), _)| name == subscription)
            .map(|(_, parked)| parked.clone())
            .collect())
    }

    async fn unpark(&self, subscription: &str, position: u64) -> Result<bool, StoreError> {
        let key = (subscription.to_owned(), position);
        Ok(self.parked_mut().remove(&key).is_some())
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
