//! Skipping an event the broker refuses for good: an operator's decision, recorded in the log
//! itself. Never automatic: the relay stops before such an event and waits for this call.

use crate::broker::{Broker, TipError};
use crate::jetstream::JetStreamBroker;
use crate::relay::{RelayConfig, RelayError};
use async_nats::jetstream;
use cqrs_core::{AppendBatch, ExpectedVersion, LogRead, Metadata, NewEvent, TrackingStore};
use serde_json::json;
use uuid::Uuid;

/// The event type of the record a skip appends.
pub const SKIPPED: &str = "RelaySkipped";

/// The stream a relay's skips are recorded in: `RelaySkip-<relay name>`.
pub fn skip_stream(relay: &str) -> String {
    format!("RelaySkip-{relay}")
}

/// Moves relay `config.name` past the event at `position` (whose id must be `event_id`, the
/// one its [`RelayError::Refused`] named) without publishing it, and records why: a
/// `RelaySkipped` event in stream `RelaySkip-<relay>` carrying the relay, position, event id,
/// stream, version and `reason`, committed in one transaction with the relay's checkpoint at
/// `position`. The record is itself in the log, so the relay publishes it: consumers learn
/// what they will never receive. Returns the record's position.
///
/// Refused ([`RelayError::NotSkippable`]) unless that event is the next one the relay
/// would publish. Run it while the relay is stopped.
pub async fn skip_refused<S: TrackingStore>(
    store: &S,
    jetstream: &jetstream::Context,
    config: &RelayConfig,
    position: u64,
    event_id: Uuid,
    reason: &str,
) -> Result<u64, RelayError> {
    let broker = JetStreamBroker::new(jetstream.clone(), config.stream.clone());
    skip_refused_on(store, &broker, config, position, event_id, reason).await
}

/// [`skip_refused`] on any [`Broker`].
pub async fn skip_refused_on<S: TrackingStore, B: Broker>(
    store: &S,
    broker: &B,
    config: &RelayConfig,
    position: u64,
    event_id: Uuid,
    reason: &str,
) -> Result<u64, RelayError> {
    let relay = config.name.clone();
    let store_error = |source| RelayError::Store {
        relay: relay.clone(),
        source,
    };
    let not_skippable = |reason: String| RelayError::NotSkippable {
        relay: relay.clone(),
        position,
        reason,
    };
    let tip = broker.tip().await.map_err(|source| match source {
        TipError::Unreachable { source, .. } => RelayError::Unreachable {
            relay: relay.clone(),
            source,
        },
        foreign => RelayError::Foreign {
            relay: relay.clone(),
            source: foreign,
        },
    })?;
    let checkpoint = store
        .load_checkpoint(&config.name)
        .await
        .map_err(store_error)?;
    let resume = checkpoint.max(tip.position);
    let next = store
        .read_log(&LogRead::forward(resume.saturating_add(1), 1).matching(config.filter.clone()))
        .await
        .map_err(store_error)?;
    let Some(next) = next.into_iter().next() else {
        return Err(not_skippable(format!(
            "the relay has published everything (up to position {resume})"
        )));
    };
    if next.position != position || next.event_id != event_id {
        return Err(not_skippable(format!(
            "the next event to publish is {} at position {}",
            next.event_id, next.position
        )));
    }
    let record = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: SKIPPED.to_owned(),
        schema_version: 1,
        payload: json!({
            "relay": config.name,
            "position": position,
            "event_id": event_id,
            "stream_id": next.stream_id,
            "version": next.version,
            "reason": reason,
        })
        .to_string(),
        metadata: Metadata {
            correlation_id: next.metadata.correlation_id,
            causation_id: Some(event_id),
            custom: Default::default(),
        },
    };
    let batch = AppendBatch::new()
        .append(
            skip_stream(&config.name),
            ExpectedVersion::Any,
            vec![record],
        )
        .tracking(config.name.clone(), position);
    let appended = store.append_batch(batch).await.map_err(store_error)?;
    let recorded = appended
        .first()
        .and_then(|appended| appended.events.first())
        .map_or(0, |event| event.position);
    tracing::warn!(relay = %config.name, position, %event_id, reason, "event skipped by operator; not published");
    Ok(recorded)
}
