//! The JSON codec: events to stored payloads and back, through the upcaster chain.

use crate::aggregate::DomainEvent;
use crate::envelope::{EventEnvelope, NewEvent, RecordedEvent};
use crate::metadata::Metadata;
use crate::upcast::{RawEvent, UpcastError, Upcasters};
use uuid::Uuid;

/// Why an event could not be serialized; nothing was appended.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// serde_json refused the value (a map with non-string keys, a failing `Serialize`).
    #[error("cannot serialize event `{event_type}`: {source}")]
    Serialize {
        /// The event's type.
        event_type: &'static str,
        /// What serde_json reported.
        source: serde_json::Error,
    },
    /// The event did not serialize as serde's externally tagged variant named `event_type`.
    #[error(
        "event `{event_type}` serialized as {found}, not as the variant `{event_type}`: derive \
         Serialize on the event enum without #[serde(tag)]/#[serde(untagged)] and return the \
         variant's serde name from event_type()"
    )]
    NotTagged {
        /// What `event_type()` returned.
        event_type: &'static str,
        /// The start of what was serialized.
        found: String,
    },
}

/// Why a stored event could not be turned into the current event type.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot decode event `{event_type}` (schema {schema_version}) at stream `{stream_id}` \
     version {version}: {cause}"
)]
pub struct DecodeError {
    /// The stream of the event.
    pub stream_id: String,
    /// Its version in that stream.
    pub version: u64,
    /// Its stored type.
    pub event_type: String,
    /// Its stored schema version.
    pub schema_version: u32,
    /// What went wrong.
    #[source]
    pub cause: DecodeCause,
}

/// The part of decoding that failed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeCause {
    /// The payload is not JSON, or does not fit the event enum.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// An upcaster step failed.
    #[error("{0}")]
    Upcast(#[from] UpcastError),
}

/// Serializes an event for appending, under a fresh event id.
pub fn encode<E: DomainEvent>(event: &E, metadata: &Metadata) -> Result<NewEvent, EncodeError> {
    let event_type = event.event_type();
    let json = serde_json::to_string(event)
        .map_err(|source| EncodeError::Serialize { event_type, source })?;
    let payload = strip_variant_tag(&json, event_type)
        .ok_or_else(|| EncodeError::NotTagged {
            event_type,
            found: json.chars().take(80).collect(),
        })?
        .to_owned();
    Ok(NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.to_owned(),
        schema_version: event.schema_version(),
        payload,
        metadata: metadata.clone(),
    })
}

/// `{"Type":<payload>}` gives `<payload>`; a unit variant `"Type"` gives `null`.
fn strip_variant_tag<'a>(json: &'a str, event_type: &str) -> Option<&'a str> {
    if let Some(unit) = json.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return (unit == event_type).then_some("null");
    }
    json.strip_prefix("{\"")?
        .strip_prefix(event_type)?
        .strip_prefix("\":")?
        .strip_suffix('}')
}

/// Deserializes a stored event into the current event type, upcasting it first if a
/// registered step accepts its type and schema version.
pub fn decode<E: DomainEvent>(
    recorded: &RecordedEvent,
    upcasters: &Upcasters,
) -> Result<E, DecodeError> {
    let fail = |cause: DecodeCause| DecodeError {
        stream_id: recorded.stream_id.clone(),
        version: recorded.version,
        event_type: recorded.event_type.clone(),
        schema_version: recorded.schema_version,
        cause,
    };
    if upcasters.applies_to(&recorded.event_type, recorded.schema_version) {
        let payload = serde_json::from_str(&recorded.payload).map_err(|e| fail(e.into()))?;
        let current = upcasters
            .upcast(RawEvent {
                event_type: recorded.event_type.clone(),
                schema_version: recorded.schema_version,
                payload,
            })
            .map_err(|e| fail(e.into()))?;
        let mut tagged = serde_json::Map::with_capacity(1);
        tagged.insert(current.event_type, current.payload);
        return serde_json::from_value(tagged.into()).map_err(|e| fail(e.into()));
    }
    let mut tagged = String::with_capacity(recorded.event_type.len() + recorded.payload.len() + 5);
    tagged.push_str("{\"");
    tagged.push_str(&recorded.event_type);
    tagged.push_str("\":");
    tagged.push_str(&recorded.payload);
    tagged.push('}');
    serde_json::from_str(&tagged).map_err(|e| fail(e.into()))
}

/// Decodes a stored event together with its envelope.
pub fn decode_envelope<E: DomainEvent>(
    recorded: RecordedEvent,
    upcasters: &Upcasters,
) -> Result<EventEnvelope<E>, DecodeError> {
    let event = decode(&recorded, upcasters)?;
    Ok(recorded.into_envelope(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::recorded_now;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Ev {
        Opened { name: String },
        Renamed(String),
        Closed,
    }
    impl DomainEvent for Ev {
        fn event_type(&self) -> &'static str {
            match self {
                Ev::Opened { .. } => "Opened",
                Ev::Renamed(_) => "Renamed",
                Ev::Closed => "Closed",
            }
        }
    }

    fn stored(new: NewEvent) -> RecordedEvent {
        RecordedEvent {
            stream_id: "S-1".into(),
            version: 4,
            position: 9,
            event_id: new.event_id,
            event_type: new.event_type,
            schema_version: new.schema_version,
            payload: new.payload,
            metadata: new.metadata,
            recorded_at: recorded_now(),
        }
    }

    #[test]
    fn every_variant_shape_round_trips_with_type_in_its_own_column() {
        let events = [
            Ev::Opened {
                name: "日本語 \"quoted\" 🚀".into(),
            },
            Ev::Renamed("x".into()),
            Ev::Closed,
        ];
        let payloads = [r#"{"name":"日本語 \"quoted\" 🚀"}"#, r#""x""#, "null"];
        for (event, payload) in events.iter().zip(payloads) {
            let new = encode(event, &Metadata::new()).unwrap();
            assert_eq!(new.event_type, event.event_type());
            assert_eq!(new.payload, payload);
            let back: Ev = decode(&stored(new), &Upcasters::new()).unwrap();
            assert_eq!(&back, event);
        }
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(tag = "type")]
    enum Internally {
        A { x: u32 },
    }
    impl DomainEvent for Internally {
        fn event_type(&self) -> &'static str {
            "A"
        }
    }

    #[test]
    fn an_internally_tagged_enum_is_refused_at_encode() {
        let err = encode(&Internally::A { x: 1 }, &Metadata::new()).unwrap_err();
        assert!(
            matches!(
                err,
                EncodeError::NotTagged {
                    event_type: "A",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_bad_payload_names_stream_version_and_type() {
        let mut recorded = stored(encode(&Ev::Closed, &Metadata::new()).unwrap());
        recorded.event_type = "Opened".into();
        recorded.payload = "{\"name\": 12".into();
        let err = decode::<Ev>(&recorded, &Upcasters::new()).unwrap_err();
        let message = err.to_string();
        assert!(
            message
                .starts_with("cannot decode event `Opened` (schema 1) at stream `S-1` version 4:"),
            "{message}"
        );
        assert!(matches!(err.cause, DecodeCause::Json(_)));
    }

    #[test]
    fn upcasters_rename_and_reshape_before_deserializing() {
        let upcasters = Upcasters::new().with("Created", 1, |e| {
            Ok(RawEvent {
                event_type: "Opened".into(),
                schema_version: 2,
                payload: json!({ "name": e.payload["title"] }),
            })
        });
        let mut recorded = stored(encode(&Ev::Closed, &Metadata::new()).unwrap());
        recorded.event_type = "Created".into();
        recorded.payload = r#"{"title":"old"}"#.into();
        let event: Ev = decode(&recorded, &upcasters).unwrap();
        assert_eq!(event, Ev::Opened { name: "old".into() });
    }
}
