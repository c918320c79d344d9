//! The store contract: what every backend promises, as one async trait and its error type.

use crate::envelope::{EventRef, NewEvent, RecordedEvent};
use crate::log::LogRead;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;
use tokio::sync::watch;
use uuid::Uuid;

/// What [`EventStore::visit_stream`] and [`EventStore::visit_log`] hand each event to;
/// `Break` ends the read.
pub type Visitor<'v> = dyn FnMut(EventRef<'_>) -> ControlFlow<()> + Send + 'v;

/// Hands `events` to `visit` in order until it breaks; how many it was handed. For
/// backends whose `visit_*` reads owned events.
pub fn visit_each<'e>(
    events: impl IntoIterator<Item = &'e RecordedEvent>,
    visit: &mut Visitor<'_>,
) -> usize {
    let mut visited = 0;
    for event in events {
        visited += 1;
        if visit(event.into()).is_break() {
            break;
        }
    }
    visited
}

/// The optimistic-concurrency condition an append is made under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist yet (no event was ever appended to it).
    NoStream,
    /// The stream must hold at least one event.
    StreamExists,
    /// The stream's version must be exactly this; `Exact(0)` means "no stream yet", so a
    /// repository can pass the version it loaded, whatever it was.
    Exact(u64),
}

impl ExpectedVersion {
    /// Checks the condition against the stream's current version (`None`: never written).
    ///
    /// Backends call this, so every one of them applies the same rules.
    pub fn check(self, stream_id: &str, actual: Option<u64>) -> Result<(), StoreError> {
        let holds = match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::StreamExists => actual.is_some(),
            ExpectedVersion::Exact(version) => actual.unwrap_or(0) == version,
        };
        if holds {
            Ok(())
        } else {
            Err(StoreError::WrongExpectedVersion {
                stream_id: stream_id.to_owned(),
                expected: self,
                actual,
            })
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("an existing stream"),
            ExpectedVersion::Exact(version) => write!(f, "version {version}"),
        }
    }
}

/// What an append committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The stream's version after the append (0 if the stream still holds no event).
    pub version: u64,
    /// The events as stored, with their versions, positions and timestamps.
    pub events: Vec<RecordedEvent>,
}

/// Why a store refused or failed an operation; nothing was changed when it says so.
/// More variants may come with new backends and checks, so matches need a `_` arm.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream was not at the version the append expected.
    #[error("wrong expected version on stream `{stream_id}`: expected {expected}, actual {}", describe_version(.actual))]
    WrongExpectedVersion {
        /// The stream appended to.
        stream_id: String,
        /// The condition the append was made under.
        expected: ExpectedVersion,
        /// The stream's version at the time (`None`: never written).
        actual: Option<u64>,
    },
    /// An event with this id is already stored (or appears twice in the batch).
    #[error("duplicate event id {event_id} in append to stream `{stream_id}`")]
    DuplicateEventId {
        /// The stream appended to.
        stream_id: String,
        /// The id that is already taken.
        event_id: Uuid,
    },
    /// The stream id cannot be stored.
    #[error("invalid stream id {stream_id:?}: {reason}")]
    InvalidStreamId {
        /// The id as given.
        stream_id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A stored event's envelope cannot be read, or a stream's stored versions are not
    /// 1..n (its payload is the codec's business).
    #[error(
        "stored event at stream `{stream_id}` version {version}{} is unreadable: {reason}",
        describe_position(.position)
    )]
    Corrupt {
        /// The stream of the damaged event (empty when the stream id itself is unreadable).
        stream_id: String,
        /// Its version (0 when the version itself is unreadable), or the version missing.
        version: u64,
        /// Its place in the global log, where it can be read (`None` for an event that is
        /// missing, or whose position is itself damaged).
        position: Option<u64>,
        /// What could not be read.
        reason: String,
    },
    /// A read or write was asked with an argument no store accepts (a read limit of 0, an
    /// empty filter, ...); nothing was read or changed.
    #[error("invalid argument `{argument}`: {reason}")]
    InvalidArgument {
        /// The parameter, as named in the method's signature.
        argument: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A batch carried a subscription's checkpoint at or before the one stored: the event
    /// it reacted to was handled already (by an earlier run, or another process), so
    /// nothing of the batch was appended. See `cqrs_core::tracking`.
    #[error(
        "subscription `{subscription}` is at position {checkpoint}, not before {position}: \
         its reaction to that event is committed already; nothing was appended"
    )]
    CheckpointPassed {
        /// The subscription.
        subscription: String,
        /// The checkpoint the batch would have recorded.
        position: u64,
        /// The checkpoint stored.
        checkpoint: u64,
    },
    /// Nothing is parked for this subscription at this position: it was retried or
    /// discarded already (perhaps by another process), or never parked. Nothing was
    /// changed. See `cqrs_core::parking`.
    #[error("subscription `{subscription}` has no event parked at position {position}")]
    NotParked {
        /// The subscription.
        subscription: String,
        /// The position asked for.
        position: u64,
    },
    /// The store stayed locked by another writer for longer than its timeout allows.
    #[error("store busy: {reason}")]
    Busy {
        /// What the backend reported.
        reason: String,
    },
    /// An inline projection refused an event of the append, so the whole append was rolled
    /// back: neither the events nor any projection's changes were stored.
    #[error("inline projection `{projection}` failed on stream `{stream_id}` version {version}; the append was rolled back: {source}")]
    Projection {
        /// The projection's name.
        projection: String,
        /// The stream appended to.
        stream_id: String,
        /// The version the refused event would have had.
        version: u64,
        /// What the projection failed with.
        #[source]
        source: crate::handler::HandlerError,
    },
    /// The store does not implement this operation (an optional part of a contract,
    /// such as listing checkpoints); nothing was read or changed.
    #[error("this store does not support {operation}")]
    Unsupported {
        /// What was asked, as a phrase ("listing checkpoints").
        operation: &'static str,
    },
    /// Any other backend failure (I/O, a closed store, an incompatible file, ...).
    #[error("event store backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn describe_position(position: &Option<u64>) -> String {
    match position {
        Some(position) => format!(" (position {position})"),
        None => String::new(),
    }
}

fn describe_version(version: &Option<u64>) -> String {
    match version {
        Some(version) => format!("version {version}"),
        None => "no stream".to_owned(),
    }
}

/// What [`EventStore::appends`] returns: a `tokio::sync::watch` receiver of the latest
/// committed global position, named here so that callers need no `tokio` import for it.
pub type PositionWatch = watch::Receiver<u64>;

/// An append-only log of events, grouped in streams and ordered globally.
///
/// Every backend passes the conformance suite in `cqrs_core::testing::conformance`.
/// Reads past the end return fewer events (or none), never an error; an unknown stream
/// reads as empty. `recorded_at` never decreases along positions (a backend records an
/// append no earlier than the event before it, whatever the clock says), so time and
/// position order agree and [`position_at`](EventStore::position_at) is a search, not a scan.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends all events or none, if `expected` holds for the stream.
    ///
    /// The expected version is checked first, then event ids: a mismatch gives
    /// [`StoreError::WrongExpectedVersion`], a taken id [`StoreError::DuplicateEventId`], and
    /// neither changes anything. An empty batch appends nothing but is still checked.
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError>;

    /// Up to `limit` events of one stream with version `>= from_version`, oldest first.
    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of one stream with version `<= from_version`, newest first
    /// (pass `u64::MAX` to start at the end).
    async fn read_stream_backward(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `read.limit` events of the global log that `read.filter` takes: forward, those
    /// with position `>= read.from` in ascending order; backward, those with position
    /// `<= read.from` in descending order (`u64::MAX`: from the end). The feed projections,
    /// subscriptions and relays page through, and the "latest events" of a browser.
    ///
    /// Events keep their global positions, so a filtered page's last position is where the
    /// next page starts. The filter is applied by the store (through indexes where it has
    /// them), never by reading every event. A limit of 0 or a filter with an empty list is
    /// [`StoreError::InvalidArgument`] (see `cqrs_core::backend::check_log_read`).
    async fn read_log(&self, read: &LogRead) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of the whole store with position `>= from_position`, in global
    /// order: shorthand for [`read_log`](EventStore::read_log) with
    /// [`LogRead::forward`]. Backends implement `read_log` only.
    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_log(&LogRead::forward(from_position, limit)).await
    }

    /// Reads what [`read_stream`](EventStore::read_stream) reads, with the same checks, but
    /// hands each event to `visit` borrowed instead of returning it: a replay decodes the
    /// payload and drops it, so an owned [`RecordedEvent`] per event (its strings, its
    /// parsed metadata) is work thrown away. Returns how many events were visited; `visit`
    /// returning `Break` ends the read after that event. `visit` runs on the caller's task
    /// (keep it short: decode and fold); a store may read on while it runs.
    ///
    /// The default reads through `read_stream`; stores override it to read in place.
    async fn visit_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<usize, StoreError> {
        let events = self.read_stream(stream_id, from_version, limit).await?;
        Ok(visit_each(&events, visit))
    }

    /// Reads what [`read_log`](EventStore::read_log) reads, handing each event to `visit`
    /// borrowed, as [`visit_stream`](EventStore::visit_stream) does for a stream: for
    /// readers of the log that decode events and drop them.
    async fn visit_log(
        &self,
        read: &LogRead,
        visit: &mut Visitor<'_>,
    ) -> Result<usize, StoreError> {
        let events = self.read_log(read).await?;
        Ok(visit_each(&events, visit))
    }

    /// The stored events with these ids, in position order: for following causation links
    /// (`Metadata::causation_id`) and for a browser. Ids not stored are left out, an id
    /// asked twice is returned once, and no ids read as no events.
    async fn read_events_by_id(&self, event_ids: &[Uuid])
        -> Result<Vec<RecordedEvent>, StoreError>;

    /// The first position recorded at or after `at` (`None`: every event is older, or there
    /// is none), so a new subscription or an audit can start "from yesterday": read the log
    /// from the position returned.
    async fn position_at(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError>;

    /// The stream's current version, or `None` for a stream never written.
    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError>;

    /// A signal carrying the global position of the latest append committed through this
    /// store in this process, so subscriptions wake on new events instead of polling.
    /// `None` (the default) means the store cannot tell, and readers fall back to polling;
    /// writes by other processes are only ever seen by polling.
    fn appends(&self) -> Option<PositionWatch> {
        None
    }
}

#[async_trait]
impl<S: EventStore + ?Sized> EventStore for Arc<S> {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        (**self).append(stream_id, expected, events).await
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        (**self).read_stream(stream_id, from_version, limit).await
    }

    async fn read_stream_backward(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        (**self)
            .read_stream_backward(stream_id, from_version, limit)
            .await
    }

    async fn read_log(&self, read: &LogRead) -> Result<Vec<RecordedEvent>, StoreError> {
        (**self).read_log(read).await
    }

    async fn visit_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<usize, StoreError> {
        (**self)
            .visit_stream(stream_id, from_version, limit, visit)
            .await
    }

    async fn visit_log(
        &self,
        read: &LogRead,
        visit: &mut Visitor<'_>,
    ) -> Result<usize, StoreError> {
        (**self).visit_log(read, visit).await
    }

    async fn read_events_by_id(
        &self,
        event_ids: &[Uuid],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        (**self).read_events_by_id(event_ids).await
    }

    async fn position_at(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
        (**self).position_at(at).await
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        (**self).stream_version(stream_id).await
    }

    fn appends(&self) -> Option<PositionWatch> {
        (**self).appends()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_version_rules() {
        use ExpectedVersion::*;
        let cases = [
            (Any, None, true),
            (Any, Some(3), true),
            (NoStream, None, true),
            (NoStream, Some(1), false),
            (StreamExists, None, false),
            (StreamExists, Some(1), true),
            (Exact(0), None, true),
            (Exact(0), Some(1), false),
            (Exact(2), Some(2), true),
            (Exact(2), Some(3), false),
            (Exact(2), None, false),
        ];
        for (expected, actual, holds) in cases {
            assert_eq!(
                expected.check("s", actual).is_ok(),
                holds,
                "{expected:?} against {actual:?}"
            );
        }
    }

    #[test]
    fn conflict_message_names_stream_and_versions() {
        let err = ExpectedVersion::Exact(2)
            .check("Cart-1", Some(5))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "wrong expected version on stream `Cart-1`: expected version 2, actual version 5"
        );
        let err = ExpectedVersion::StreamExists
            .check("Cart-1", None)
            .unwrap_err();
        assert!(err
            .to_string()
            .ends_with("expected an existing stream, actual no stream"));
    }
}
