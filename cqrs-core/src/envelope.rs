//! Envelopes: an event on its way into the store, as stored, and decoded for the application.

use crate::metadata::Metadata;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// An event ready to append, already serialized: stores never look inside the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Chosen by the writer, unique across the store, so a retried write cannot land twice.
    pub event_id: Uuid,
    /// The event enum's variant name.
    pub event_type: String,
    /// The payload's schema version, the key upcasters match on.
    pub schema_version: u32,
    /// The event's fields as JSON text, stored byte for byte.
    pub payload: String,
    /// Correlation, causation and the application's own keys.
    pub metadata: Metadata,
}

impl NewEvent {
    /// The event as stored at this place and time; backends call it so all build it alike.
    pub fn into_recorded(
        self,
        stream_id: &str,
        version: u64,
        position: u64,
        recorded_at: DateTime<Utc>,
    ) -> RecordedEvent {
        RecordedEvent {
            stream_id: stream_id.to_owned(),
            version,
            position,
            event_id: self.event_id,
            event_type: self.event_type,
            schema_version: self.schema_version,
            payload: self.payload,
            metadata: self.metadata,
            recorded_at,
        }
    }
}

/// An event as the store keeps it: the new event plus where and when it landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The stream it belongs to.
    pub stream_id: String,
    /// 1 for a stream's first event; a stream's version is its event count.
    pub version: u64,
    /// Place in the global log, strictly increasing in commit order.
    pub position: u64,
    /// See [`NewEvent::event_id`].
    pub event_id: Uuid,
    /// See [`NewEvent::event_type`].
    pub event_type: String,
    /// See [`NewEvent::schema_version`].
    pub schema_version: u32,
    /// See [`NewEvent::payload`].
    pub payload: String,
    /// See [`NewEvent::metadata`].
    pub metadata: Metadata,
    /// When the store committed it, UTC, microsecond precision.
    pub recorded_at: DateTime<Utc>,
}

/// A decoded event with its envelope, as the repository hands it to the application.
#[derive(Debug, Clone, PartialEq)]
pub struct EventEnvelope<E> {
    /// See [`RecordedEvent::stream_id`].
    pub stream_id: String,
    /// See [`RecordedEvent::version`].
    pub version: u64,
    /// See [`RecordedEvent::position`].
    pub position: u64,
    /// See [`RecordedEvent::event_id`].
    pub event_id: Uuid,
    /// See [`RecordedEvent::metadata`].
    pub metadata: Metadata,
    /// See [`RecordedEvent::recorded_at`].
    pub recorded_at: DateTime<Utc>,
    /// The event itself, in its current schema.
    pub event: E,
}

/// A stored event borrowed where the store holds it (a database row, a page of memory): what
/// replaying a stream or decoding the log needs, read without a copy or an allocation.
/// Handed out by [`EventStore::visit_stream`](crate::EventStore::visit_stream) and
/// [`EventStore::visit_log`](crate::EventStore::visit_log); it has no metadata (a visit
/// does not read it: use the `read_*` methods for whole envelopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// See [`RecordedEvent::stream_id`].
    pub stream_id: &'a str,
    /// See [`RecordedEvent::version`].
    pub version: u64,
    /// See [`RecordedEvent::position`].
    pub position: u64,
    /// See [`RecordedEvent::event_id`].
    pub event_id: Uuid,
    /// See [`RecordedEvent::event_type`].
    pub event_type: &'a str,
    /// See [`RecordedEvent::schema_version`].
    pub schema_version: u32,
    /// See [`RecordedEvent::payload`].
    pub payload: &'a str,
    /// See [`RecordedEvent::recorded_at`].
    pub recorded_at: DateTime<Utc>,
}

impl EventRef<'_> {
    /// The owned event, with `metadata` (which a borrowed event does not carry).
    pub fn to_recorded(&self, metadata: Metadata) -> RecordedEvent {
        RecordedEvent {
            stream_id: self.stream_id.to_owned(),
            version: self.version,
            position: self.position,
            event_id: self.event_id,
            event_type: self.event_type.to_owned(),
            schema_version: self.schema_version,
            payload: self.payload.to_owned(),
            metadata,
            recorded_at: self.recorded_at,
        }
    }
}

impl<'a> From<&'a RecordedEvent> for EventRef<'a> {
    fn from(recorded: &'a RecordedEvent) -> Self {
        Self {
            stream_id: &recorded.stream_id,
            version: recorded.version,
            position: recorded.position,
            event_id: recorded.event_id,
            event_type: &recorded.event_type,
            schema_version: recorded.schema_version,
            payload: &recorded.payload,
            recorded_at: recorded.recorded_at,
        }
    }
}

impl RecordedEvent {
    /// Wraps the decoded `event` in this envelope, dropping the serialized form.
    pub fn into_envelope<E>(self, event: E) -> EventEnvelope<E> {
        EventEnvelope {
            stream_id: self.stream_id,
            version: self.version,
            position: self.position,
            event_id: self.event_id,
            metadata: self.metadata,
            recorded_at: self.recorded_at,
            event,
        }
    }
}

impl Metadata {
    /// Metadata for a command issued in reaction to `event`: the same correlation id and
    /// application keys, and `event`'s id as the causation id, so the chain from the first
    /// request to every consequence can be followed.
    ///
    /// Defined here rather than in `metadata.rs` because it reads an envelope, and the
    /// metadata module sits below the envelope module.
    pub fn caused_by<E>(event: &EventEnvelope<E>) -> Self {
        Self {
            correlation_id: event.metadata.correlation_id,
            causation_id: Some(event.event_id),
            custom: event.metadata.custom.clone(),
        }
    }
}
