//! A page of events copied into one buffer: what a visit reads on another thread while the
//! caller visits the page before, then hands on borrowed, one allocation per page instead
//! of three strings per event.

use chrono::{DateTime, Utc};
use cqrs_core::EventRef;
use std::ops::Range;
use uuid::Uuid;

/// Events as [`EventRef`]s borrowing one text buffer.
#[derive(Debug, Default)]
pub(crate) struct EventBuffer {
    text: String,
    events: Vec<Buffered>,
}

/// One event of the buffer: its text columns as ranges of the buffer's text.
#[derive(Debug)]
struct Buffered {
    stream_id: Range<usize>,
    version: u64,
    position: u64,
    event_id: Uuid,
    event_type: Range<usize>,
    schema_version: u32,
    payload: Range<usize>,
    recorded_at: DateTime<Utc>,
}

impl EventBuffer {
    /// An empty buffer with room for `events` events.
    pub fn with_capacity(events: usize) -> Self {
        Self {
            text: String::new(),
            events: Vec::with_capacity(events),
        }
    }

    /// Copies `event` in at the end.
    pub fn push(&mut self, event: EventRef<'_>) {
        let mut copy = |text: &str| {
            let start = self.text.len();
            self.text.push_str(text);
            start..self.text.len()
        };
        let buffered = Buffered {
            stream_id: copy(event.stream_id),
            event_type: copy(event.event_type),
            payload: copy(event.payload),
            version: event.version,
            position: event.position,
            event_id: event.event_id,
            schema_version: event.schema_version,
            recorded_at: event.recorded_at,
        };
        self.events.push(buffered);
    }

    /// Its events, in the order they were pushed.
    pub fn iter(&self) -> impl Iterator<Item = EventRef<'_>> {
        self.events.iter().map(|event| EventRef {
            stream_id: &self.text[event.stream_id.clone()],
            version: event.version,
            position: event.position,
            event_id: event.event_id,
            event_type: &self.text[event.event_type.clone()],
            schema_version: event.schema_version,
            payload: &self.text[event.payload.clone()],
            recorded_at: event.recorded_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_back_as_they_were_pushed() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let event = |n: u64, payload: &'static str| EventRef {
            stream_id: "Cart-1",
            version: n,
            position: n + 10,
            event_id: Uuid::from_u128(u128::from(n)),
            event_type: "ItemAdded",
            schema_version: 2,
            payload,
            recorded_at: at,
        };
        let pushed = [event(1, "{\"a\":\"é\"}"), event(2, ""), event(3, "{}")];
        let mut buffer = EventBuffer::with_capacity(1);
        for e in pushed {
            buffer.push(e);
        }
        assert_eq!(buffer.iter().collect::<Vec<_>>(), pushed);
        assert_eq!(EventBuffer::default().iter().count(), 0);
    }
}
