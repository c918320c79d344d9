//! What the relay asks of the JetStream stream it publishes to: its tip (the last message's
//! sequence and the log position it carries), and whether a failed publish is worth retrying.

use crate::message::{self, EnvelopeError};
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::{self, stream};
use std::time::Duration;

/// Where the JetStream stream ends: the last sequence it assigned and the log position
/// carried by the message there (0 for both on an empty stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tip {
    /// The stream's last sequence; the next publish expects it (`Nats-Expected-Last-Sequence`).
    pub sequence: u64,
    /// The log position of the last event published (0: none, or its message is gone).
    pub position: u64,
}

/// Why the tip could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TipError {
    /// The broker did not answer (down, restarting, timed out): worth retrying.
    #[error("JetStream stream `{stream}` unreachable: {source}")]
    Unreachable {
        /// The JetStream stream.
        stream: String,
        /// What the client reported.
        #[source]
        source: async_nats::Error,
    },
    /// The last message was not published by a relay: the stream holds foreign messages.
    #[error("JetStream stream `{stream}`: {source}")]
    Foreign {
        /// The JetStream stream.
        stream: String,
        /// The unreadable header.
        #[source]
        source: EnvelopeError,
    },
}

/// Reads the tip of JetStream stream `name`.
pub async fn tip(context: &jetstream::Context, name: &str) -> Result<Tip, TipError> {
    let unreachable = |source: async_nats::Error| TipError::Unreachable {
        stream: name.to_owned(),
        source,
    };
    let stream = context
        .get_stream_no_info(name)
        .await
        .map_err(|e| unreachable(e.into()))?;
    let info = stream.get_info().await.map_err(|e| unreachable(e.into()))?;
    let sequence = info.state.last_sequence;
    if info.state.messages == 0 {
        // Purged or never written: only the relay's own checkpoint says how far it got.
        return Ok(Tip {
            sequence,
            position: 0,
        });
    }
    let last = stream
        .get_raw_message(sequence)
        .await
        .map_err(|e| unreachable(e.into()))?;
    let position =
        message::position(&last.headers, sequence).map_err(|source| TipError::Foreign {
            stream: name.to_owned(),
            source,
        })?;
    Ok(Tip { sequence, position })
}

/// Creates JetStream stream `name` for subjects `<prefix>.>` (file storage, the given
/// duplicate window) unless it exists; an existing stream is left as it is.
pub async fn ensure_stream(
    context: &jetstream::Context,
    name: &str,
    prefix: &str,
    duplicate_window: Duration,
) -> Result<(), async_nats::Error> {
    context
        .get_or_create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{prefix}.>")],
            duplicate_window,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    Ok(())
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

/// JetStream's error code for a message above the stream's `max_msg_size`.
const MESSAGE_TOO_LARGE: u64 = 10054;

/// Sorts a publish failure.
pub fn classify(error: &PublishError) -> Failure {
    match error.kind() {
        PublishErrorKind::MaxPayloadExceeded => Failure::Refused,
        PublishErrorKind::WrongLastSequence => Failure::Moved,
        PublishErrorKind::Other => {
            let code = std::error::Error::source(error)
                .and_then(|source| source.downcast_ref::<jetstream::Error>())
                .map(|server| server.error_code().0);
            if code == Some(MESSAGE_TOO_LARGE) {
                Failure::Refused
            } else {
                Failure::Transient
            }
        }
        _ => Failure::Transient,
    }
}
