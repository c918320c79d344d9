//! How a stored event becomes a JetStream message, and back: the subject, the payload and the
//! headers that carry its envelope.
//!
//! Subject: `<prefix>.<aggregate type>.<stream id>`, each token escaped by [`escape_token`],
//! so every event of a stream lands on one subject (order per stream is order per subject).
//! Payload: the stored payload bytes, unchanged. Headers: the event id as `Nats-Msg-Id` (the
//! broker's deduplication key) and the envelope under the `Cqrs-*` names below.

use async_nats::HeaderMap;
use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_core::{category, Metadata, RecordedEvent};
use uuid::Uuid;

/// Header naming the event's stream (escaped like a subject token).
pub const STREAM: &str = "Cqrs-Stream";
/// Header holding the event's version in its stream.
pub const VERSION: &str = "Cqrs-Version";
/// Header holding the event's position in the sender's global log.
pub const POSITION: &str = "Cqrs-Position";
/// Header naming the event type (escaped like a subject token).
pub const EVENT_TYPE: &str = "Cqrs-Event-Type";
/// Header holding the payload's schema version.
pub const SCHEMA_VERSION: &str = "Cqrs-Schema-Version";
/// Header holding when the sender stored the event (RFC 3339, UTC, microseconds).
pub const RECORDED_AT: &str = "Cqrs-Recorded-At";
/// Header holding the correlation id, when the event has one.
pub const CORRELATION_ID: &str = "Cqrs-Correlation-Id";
/// Header holding the causation id, when the event has one.
pub const CAUSATION_ID: &str = "Cqrs-Causation-Id";
/// Header holding the metadata's application keys as compact JSON, when there are any.
pub const METADATA: &str = "Cqrs-Metadata";
/// JetStream's deduplication header: the event id.
pub const MSG_ID: &str = "Nats-Msg-Id";

/// Escapes one subject token so that any stream id or type fits: ASCII letters, digits, `-`
/// and `_` stay as they are, every other byte (`.`, `*`, `>`, `%`, spaces, non-ASCII UTF-8)
/// becomes `%XX` (upper-case hex). Reversible ([`unescape_token`]) and never empty for a
/// non-empty input, so distinct stream ids get distinct subjects. Use it to build filter
/// subjects: `format!("orders.{}.>", escape_token("Order"))`.
pub fn escape_token(raw: &str) -> String {
    let mut escaped = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

/// Reverses [`escape_token`]; `None` for text it cannot have produced.
pub fn unescape_token(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut raw = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
            raw.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            raw.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(raw).ok()
}

/// The subject `event` is published on: `<prefix>.<aggregate type>.<stream id>`.
pub fn subject(prefix: &str, event: &RecordedEvent) -> String {
    format!(
        "{prefix}.{}.{}",
        escape_token(category(&event.stream_id)),
        escape_token(&event.stream_id)
    )
}

/// The headers that carry `event`'s envelope.
pub fn headers(event: &RecordedEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID, event.event_id.to_string());
    headers.insert(STREAM, escape_token(&event.stream_id));
    headers.insert(VERSION, event.version.to_string());
    headers.insert(POSITION, event.position.to_string());
    headers.insert(EVENT_TYPE, escape_token(&event.event_type));
    headers.insert(SCHEMA_VERSION, event.schema_version.to_string());
    headers.insert(
        RECORDED_AT,
        event
            .recorded_at
            .to_rfc3339_opts(SecondsFormat::Micros, true),
    );
    if let Some(id) = event.metadata.correlation_id {
        headers.insert(CORRELATION_ID, id.to_string());
    }
    if let Some(id) = event.metadata.causation_id {
        headers.insert(CAUSATION_ID, id.to_string());
    }
    if !event.metadata.custom.is_empty() {
        // Compact JSON has no line breaks, so it fits in a header value; a map of JSON
        // values always serializes.
        if let Ok(json) = serde_json::to_string(&event.metadata.custom) {
            headers.insert(METADATA, json);
        }
    }
    headers
}

/// A message that does not carry a readable envelope: named by its JetStream sequence.
#[derive(Debug, thiserror::Error)]
#[error("message at JetStream sequence {sequence} has no readable `{header}` header: {reason}")]
pub struct EnvelopeError {
    /// The message's sequence in the JetStream stream.
    pub sequence: u64,
    /// The header missing or unreadable (or `payload`).
    pub header: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Reads a header; `None` when absent.
fn optional<'h>(headers: &'h HeaderMap, name: &'static str) -> Option<&'h str> {
    headers.get(name).map(|value| value.as_str())
}

/// Reads the position header alone: where the relay resumes from.
pub fn position(headers: &HeaderMap, sequence: u64) -> Result<u64, EnvelopeError> {
    let reader = Reader { headers, sequence };
    reader.parse(POSITION)
}

/// Reads the event id (`Nats-Msg-Id`) alone.
pub fn event_id(headers: &HeaderMap, sequence: u64) -> Result<Uuid, EnvelopeError> {
    let reader = Reader { headers, sequence };
    reader.parse(MSG_ID)
}

/// The sender's envelope and payload, rebuilt from a message at JetStream `sequence`.
pub fn recorded(
    headers: &HeaderMap,
    payload: &[u8],
    sequence: u64,
) -> Result<RecordedEvent, EnvelopeError> {
    let reader = Reader { headers, sequence };
    let payload = std::str::from_utf8(payload)
        .map_err(|error| reader.error("payload", error.to_string()))?
        .to_owned();
    let recorded_at = DateTime::parse_from_rfc3339(reader.required(RECORDED_AT)?)
        .map_err(|error| reader.error(RECORDED_AT, error.to_string()))?
        .with_timezone(&Utc);
    let custom = match optional(headers, METADATA) {
        Some(json) => {
            serde_json::from_str(json).map_err(|error| reader.error(METADATA, error.to_string()))?
        }
        None => Default::default(),
    };
    Ok(RecordedEvent {
        stream_id: reader.unescaped(STREAM)?,
        version: reader.parse(VERSION)?,
        position: reader.parse(POSITION)?,
        event_id: reader.parse::<Uuid>(MSG_ID)?,
        event_type: reader.unescaped(EVENT_TYPE)?,
        schema_version: reader.parse(SCHEMA_VERSION)?,
        payload,
        metadata: Metadata {
            correlation_id: reader.parse_optional(CORRELATION_ID)?,
            causation_id: reader.parse_optional(CAUSATION_ID)?,
            custom,
        },
        recorded_at,
    })
}

/// Reads the headers of the message at `sequence`, naming it in every error.
struct Reader<'h> {
    headers: &'h HeaderMap,
    sequence: u64,
}

impl Reader<'_> {
    fn error(&self, header: &'static str, reason: String) -> EnvelopeError {
        EnvelopeError {
            sequence: self.sequence,
            header,
            reason,
        }
    }

    fn required(&self, name: &'static str) -> Result<&str, EnvelopeError> {
        optional(self.headers, name).ok_or_else(|| self.error(name, "missing".to_owned()))
    }

    fn unescaped(&self, name: &'static str) -> Result<String, EnvelopeError> {
        let escaped = self.required(name)?;
        unescape_token(escaped)
            .ok_or_else(|| self.error(name, format!("{escaped:?} is not an escaped token")))
    }

    fn parse<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, EnvelopeError>
    where
        T::Err: std::fmt::Display,
    {
        let text = self.required(name)?;
        text.parse()
            .map_err(|error| self.error(name, format!("{text:?}: {error}")))
    }

    fn parse_optional<T: std::str::FromStr>(
        &self,
        name: &'static str,
    ) -> Result<Option<T>, EnvelopeError>
    where
        T::Err: std::fmt::Display,
    {
        match optional(self.headers, name) {
            Some(_) => self.parse(name).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(stream_id: &str) -> RecordedEvent {
        RecordedEvent {
            stream_id: stream_id.to_owned(),
            version: 3,
            position: 17,
            event_id: Uuid::now_v7(),
            event_type: "OrderPlaced".to_owned(),
            schema_version: 2,
            payload: r#"{"total":12}"#.to_owned(),
            metadata: Metadata::new()
                .with_correlation_id(Uuid::now_v7())
                .with_causation_id(Uuid::now_v7())
                .with("tenant", json!({"id": 7, "name": "a\nb"})),
            recorded_at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn tokens_escape_every_byte_a_subject_cannot_hold_and_round_trip() {
        for raw in [
            "Order-42", "a.b", "*", ">", "50%", "x y\tz", "ünï", "%41", "\n",
        ] {
            let escaped = escape_token(raw);
            assert!(!escaped.is_empty());
            assert!(
                escaped
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_%".contains(&b)),
                "{raw:?} -> {escaped}"
            );
            assert_eq!(unescape_token(&escaped).as_deref(), Some(raw));
        }
        assert_eq!(escape_token("Order-42"), "Order-42");
        assert_eq!(escape_token("a.b*>"), "a%2Eb%2A%3E");
        assert_eq!(unescape_token("%4"), None);
        assert_eq!(unescape_token("%ZZ"), None);
    }

    #[test]
    fn subject_is_prefix_aggregate_type_and_stream() {
        assert_eq!(
            subject("orders", &event("Order-42")),
            "orders.Order.Order-42"
        );
        assert_eq!(
            subject("orders", &event("Order-4.2")),
            "orders.Order.Order-4%2E2"
        );
    }

    #[test]
    fn the_envelope_round_trips_through_headers() {
        let sent = event("Order-a.b");
        let headers = headers(&sent);
        assert_eq!(
            headers.get(MSG_ID).map(|v| v.as_str().to_owned()),
            Some(sent.event_id.to_string())
        );
        let received = recorded(&headers, sent.payload.as_bytes(), 9).unwrap();
        assert_eq!(received, sent);
        assert_eq!(position(&headers, 9).unwrap(), 17);
    }

    #[test]
    fn a_missing_or_bad_header_is_named_with_the_sequence() {
        let mut headers = headers(&event("Order-1"));
        headers.insert(VERSION, "three");
        let error = recorded(&headers, b"{}", 41).unwrap_err();
        assert_eq!(error.sequence, 41);
        assert_eq!(error.header, VERSION);
        let error = position(&HeaderMap::new(), 5).unwrap_err();
        assert_eq!(
            error.to_string(),
            "message at JetStream sequence 5 has no readable `Cqrs-Position` header: missing"
        );
    }
}
