//! The envelope on the wire: [`WireEvent`], a stored event as JSON with its payload passed
//! through byte for byte (a `RawValue`, checked to be JSON but never re-encoded).

use chrono::{DateTime, Utc};
use cqrs_core::{Metadata, RecordedEvent};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// One event as the feed serves it. `payload` is the stored JSON text unchanged; a
/// redacted event (see [`Shown::Redact`](crate::Shown::Redact)) has `payload: null`, no
/// custom metadata keys and `redacted: true`.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireEvent {
    /// Place in the global log.
    pub position: u64,
    /// The stream it belongs to.
    pub stream_id: String,
    /// Its version in the stream.
    pub version: u64,
    /// Unique across the store.
    pub event_id: Uuid,
    /// The event enum's variant name.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: u32,
    /// When the store committed it.
    pub recorded_at: DateTime<Utc>,
    /// Correlation, causation and the application's own keys.
    pub metadata: Metadata,
    /// The stored payload, as stored (`None`: redacted).
    pub payload: Option<Box<RawValue>>,
    /// Whether the payload and custom metadata were withheld from this caller.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

/// A stored payload that is not JSON (a damaged event): named by its position.
#[derive(Debug, thiserror::Error)]
#[error("the payload stored at position {position} (stream `{stream_id}` version {version}) is not JSON: {source}")]
pub struct PayloadError {
    /// The event's position.
    pub position: u64,
    /// Its stream.
    pub stream_id: String,
    /// Its version.
    pub version: u64,
    /// What the JSON parser said.
    #[source]
    pub source: serde_json::Error,
}

impl WireEvent {
    /// The event as served: its payload moved (not copied, not re-encoded) into the JSON.
    pub fn shown(event: RecordedEvent) -> Result<Self, PayloadError> {
        let (position, stream_id, version) =
            (event.position, event.stream_id.clone(), event.version);
        let payload = RawValue::from_string(event.payload).map_err(|source| PayloadError {
            position,
            stream_id,
            version,
            source,
        })?;
        Ok(Self {
            position: event.position,
            stream_id: event.stream_id,
            version: event.version,
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            recorded_at: event.recorded_at,
            metadata: event.metadata,
            payload: Some(payload),
            redacted: false,
        })
    }

    /// The event with its payload and custom metadata withheld; ids, type, place and the
    /// correlation and causation links stay, so traces still hold together.
    pub fn redacted(event: RecordedEvent) -> Self {
        Self {
            position: event.position,
            stream_id: event.stream_id,
            version: event.version,
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            recorded_at: event.recorded_at,
            metadata: Metadata {
                custom: Default::default(),
                ..event.metadata
            },
            payload: None,
            redacted: true,
        }
    }

    /// The event as the store returned it, for a consumer in another process; `None` for a
    /// redacted event (its payload is not there to hand on).
    pub fn into_recorded(self) -> Option<RecordedEvent> {
        let payload = self.payload?;
        Some(RecordedEvent {
            stream_id: self.stream_id,
            version: self.version,
            position: self.position,
            event_id: self.event_id,
            event_type: self.event_type,
            schema_version: self.schema_version,
            payload: String::from(Box::<str>::from(payload)),
            metadata: self.metadata,
            recorded_at: self.recorded_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload: &str) -> RecordedEvent {
        RecordedEvent {
            stream_id: "Order-1".into(),
            version: 2,
            position: 7,
            event_id: Uuid::nil(),
            event_type: "OrderPlaced".into(),
            schema_version: 1,
            payload: payload.into(),
            metadata: Metadata::new().with("user", "ada"),
            recorded_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_payload_goes_out_and_comes_back_byte_for_byte() {
        // Spacing, key order and a float's digits a re-encoding would change.
        let stored = r#"{ "b":1.10,  "a" : [1,2] ,"z":"\u00e9"}"#;
        let json = serde_json::to_string(&WireEvent::shown(event(stored)).unwrap()).unwrap();
        assert!(json.contains(stored), "{json}");
        let back: WireEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back.into_recorded(), Some(event(stored)));
    }

    #[test]
    fn a_payload_that_is_not_json_is_an_error_naming_the_event() {
        let error = WireEvent::shown(event("{not json")).unwrap_err();
        assert_eq!((error.position, error.version), (7, 2));
        assert!(error.to_string().contains("stream `Order-1`"), "{error}");
    }

    #[test]
    fn redacting_withholds_the_payload_and_custom_keys_but_keeps_the_links() {
        let mut stored = event("{}");
        stored.metadata.correlation_id = Some(Uuid::from_u128(9));
        let json = serde_json::to_value(WireEvent::redacted(stored)).unwrap();
        assert_eq!(json["payload"], serde_json::Value::Null);
        assert_eq!(json["redacted"], true);
        assert!(json["metadata"].get("custom").is_none(), "{json}");
        assert_eq!(
            json["metadata"]["correlation_id"],
            Uuid::from_u128(9).to_string()
        );
    }
}
