//! JetStream as the relay's [`Broker`]: the tip from the stream's last message, publishes
//! with `Nats-Expected-Last-Sequence`, and which failures are worth retrying.

use crate::broker::{Ack, AckFuture, Broker, Failure, Outgoing, PublishFailure, Tip, TipError};
use crate::message;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use std::time::Duration;

/// A JetStream stream, published to through `context`.
#[derive(Clone)]
pub struct JetStreamBroker {
    context: jetstream::Context,
    stream: String,
}

impl JetStreamBroker {
    /// JetStream stream `stream` through `context`.
    pub fn new(context: jetstream::Context, stream: impl Into<String>) -> Self {
        Self {
            context,
            stream: stream.into(),
        }
    }

    /// Creates the stream for subjects `<prefix>.>` (file storage, the given duplicate
    /// window) unless it exists; an existing stream is left as it is.
    pub async fn ensure_stream(
        &self,
        prefix: &str,
        duplicate_window: Duration,
    ) -> Result<(), async_nats::Error> {
        self.context
            .get_or_create_stream(stream::Config {
                name: self.stream.clone(),
                subjects: vec![format!("{prefix}.>")],
                duplicate_window,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Broker for JetStreamBroker {
    async fn tip(&self) -> Result<Tip, TipError> {
        let unreachable = |source: async_nats::Error| TipError::Unreachable {
            stream: self.stream.clone(),
            source,
        };
        let stream = self
            .context
            .get_stream_no_info(&self.stream)
            .await
            .map_err(|e| unreachable(e.into()))?;
        let info = stream.get_info().await.map_err(|e| unreachable(e.into()))?;
        let sequence = info.state.last_sequence;
        if info.state.messages == 0 {
            // Purged or never written: only the relay's own checkpoint says how far it got.
            return Ok(Tip {
                sequence,
                ..Tip::default()
            });
        }
        let last = stream
            .get_raw_message(sequence)
            .await
            .map_err(|e| unreachable(e.into()))?;
        let foreign = |source| TipError::Foreign {
            stream: self.stream.clone(),
            source,
        };
        Ok(Tip {
            sequence,
            position: message::position(&last.headers, sequence).map_err(foreign)?,
            event_id: message::event_id(&last.headers, sequence).map_err(foreign)?,
        })
    }

    async fn publish(&self, message: Outgoing) -> Result<AckFuture, PublishFailure> {
        let publish = PublishMessage::build()
            .payload(message.payload.into())
            .headers(message.headers)
            .expected_last_sequence(message.expected_last_sequence);
        let ack = self
            .context
            .send_publish(message.subject, publish)
            .await
            .map_err(failure)?;
        Ok(Box::pin(async move {
            let ack = ack.await.map_err(failure)?;
            Ok(Ack {
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            })
        }))
    }
}

/// JetStream's error code for a message above the stream's `max_msg_size`.
const MESSAGE_TOO_LARGE: u64 = 10054;

/// Sorts a publish failure.
fn failure(error: PublishError) -> PublishFailure {
    let failure = match error.kind() {
        PublishErrorKind::MaxPayloadExceeded => Failure::Refused,
        PublishErrorKind::WrongLastSequence => Failure::Moved,
        PublishErrorKind::Other => {
            let code = std::error::Error::source(&error)
                .and_then(|source| source.downcast_ref::<jetstream::Error>())
                .map(|server| server.error_code().0);
            if code == Some(MESSAGE_TOO_LARGE) {
                Failure::Refused
            } else {
                Failure::Transient
            }
        }
        _ => Failure::Transient,
    };
    PublishFailure {
        failure,
        source: Box::new(error),
    }
}
