//! What the relay needs of a broker: the tip of the stream it publishes to, and publishes
//! that expect the stream's last sequence and acknowledge later. JetStream is the broker
//! ([`crate::jetstream::JetStreamBroker`]); the trait lets the relay be checked against a
//! model broker too (sequences, deduplication window, lost acknowledgements, limits).

use crate::message::EnvelopeError;
use async_nats::HeaderMap;
use async_trait::async_trait;
use std::future::Future;
use std::pin::Pin;
use uuid::Uuid;

/// Where the broker's stream ends: the last sequence it assigned and the log position
/// carried by the message there (0 for both on an empty stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tip {
    /// The stream's last sequence; the next publish expects it.
    pub sequence: u64,
    /// The log position of the last event published (0: none, or its message is gone).
    pub position: u64,
    /// That event's id (nil with position 0): the relay checks its own log holds it.
    pub event_id: Uuid,
}

/// Why the tip could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TipError {
    /// The broker did not answer (down, restarting, timed out): worth retrying.
    #[error("stream `{stream}` unreachable: {source}")]
    Unreachable {
        /// The broker's stream.
        stream: String,
        /// What the client reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The last message was not published by a relay: the stream holds foreign messages.
    #[error("stream `{stream}`: {source}")]
    Foreign {
        /// The broker's stream.
        stream: String,
        /// The unreadable header.
        #[source]
        source: EnvelopeError,
    },
}

/// How a failed publish is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The broker refuses this message whatever the retries (too large): the relay stops.
    Refused,
    /// The stream's last sequence was not the one expected: another relay published, or an
    /// earlier publish of this one failed; read the tip again and go on from there.
    Moved,
    /// The broker is down, restarting or slow: back off, read the tip again, go on.
    Transient,
}

/// A publish that failed, and how to take it.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct PublishFailure {
    /// Whether to stop, resync or retry.
    pub failure: Failure,
    /// What the broker or client reported.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A broker's acknowledgement of one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The sequence the message got.
    pub sequence: u64,
    /// The broker had the message already (by its `Nats-Msg-Id`) and did not store it again.
    pub duplicate: bool,
}

/// The acknowledgement of a publish sent, still to come.
pub type AckFuture = Pin<Box<dyn Future<Output = Result<Ack, PublishFailure>> + Send>>;

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Its subject.
    pub subject: String,
    /// Its headers (the envelope).
    pub headers: HeaderMap,
    /// Its payload.
    pub payload: Vec<u8>,
    /// The sequence the stream must end at for the broker to take it.
    pub expected_last_sequence: u64,
}

/// A stream the relay publishes to.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// The stream's tip.
    async fn tip(&self) -> Result<Tip, TipError>;
    /// Sends `message`; the acknowledgement comes through the returned future, so many can
    /// be in flight.
    async fn publish(&self, message: Outgoing) -> Result<AckFuture, PublishFailure>;
}
