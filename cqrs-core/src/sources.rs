//! Several aggregate types read as one event type: what a consumer across aggregates (a read
//! model of several aggregates, a process manager) declares it takes.
//!
//! A [`Sources`] routes each stored event by its stream to the aggregate it belongs to,
//! decodes it through that aggregate's upcasters into the aggregate's event enum, and wraps
//! it into the consumer's own type, usually an enum with one variant per aggregate:
//!
//! ```
//! use cqrs_core::sources::Sources;
//! use cqrs_core::testing::toy::{Tally, TallyEvent};
//! # use cqrs_core::{Aggregate, DomainEvent};
//! # #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, DomainEvent)]
//! # pub enum NoteEvent { Written { text: String } }
//! # #[derive(Default)] pub struct Note;
//! # impl Aggregate for Note {
//! #     const TYPE: &'static str = "Note";
//! #     type Command = (); type Event = NoteEvent; type Error = std::fmt::Error;
//! #     fn handle(&self, _: ()) -> Result<Vec<NoteEvent>, std::fmt::Error> { Ok(vec![]) }
//! #     fn apply(&mut self, _: &NoteEvent) {}
//! # }
//!
//! /// What the consumer takes: the events of two aggregates, each still typed.
//! #[derive(Debug)]
//! enum Input {
//!     Tally(TallyEvent),
//!     Note(NoteEvent),
//! }
//!
//! let sources = Sources::new().with::<Tally>(Input::Tally).with::<Note>(Input::Note);
//! // One filtered read of the global log takes both, in global order.
//! assert_eq!(
//!     sources.filter(),
//!     cqrs_core::EventFilter::all().with_categories(["Tally", "Note"])
//! );
//! ```
//!
//! The consumers that take a `Sources` are `MultiEventHandler` (fed by a `HandlerConsumer`),
//! the `Reactor`s of exactly-once reactions and, in `cqrs-sqlite`, `MultiProjection`. Their
//! one-aggregate forms (`EventHandler`, `Projection`) are the same consumers with a
//! [`Sources::of`] one aggregate.

use crate::aggregate::{is_stream_of, Aggregate};
use crate::codec::{self, DecodeError};
use crate::envelope::{EventEnvelope, RecordedEvent};
use crate::log::EventFilter;
use crate::upcast::Upcasters;
use std::sync::Arc;

/// Decodes one aggregate's stored event, through the given upcasters, into the consumer's type.
type Decode<E> = Arc<dyn Fn(&RecordedEvent, &Upcasters) -> Result<E, DecodeError> + Send + Sync>;

/// One aggregate type a consumer takes.
struct Route<E> {
    /// `A::TYPE`, for the filter.
    aggregate: &'static str,
    /// `is_stream_of::<A>`: the filter's category can take more streams than `A`'s.
    owns: fn(&str) -> bool,
    upcasters: Arc<Upcasters>,
    decode: Decode<E>,
}

impl<E> Clone for Route<E> {
    fn clone(&self) -> Self {
        Self {
            aggregate: self.aggregate,
            owns: self.owns,
            upcasters: Arc::clone(&self.upcasters),
            decode: Arc::clone(&self.decode),
        }
    }
}

/// The aggregate types a consumer takes, and how each one's events become an `E`.
pub struct Sources<E> {
    routes: Vec<Route<E>>,
}

impl<E> Clone for Sources<E> {
    fn clone(&self) -> Self {
        Self {
            routes: self.routes.clone(),
        }
    }
}

impl<E> std::fmt::Debug for Sources<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let aggregates: Vec<_> = self.routes.iter().map(|route| route.aggregate).collect();
        f.debug_struct("Sources")
            .field("aggregates", &aggregates)
            .finish()
    }
}

impl<E: Send + Sync + 'static> Default for Sources<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Send + Sync + 'static> Sources<E> {
    /// No aggregate yet: add each with [`with`](Sources::with). A consumer of none is
    /// refused by the store's read ([`StoreError::InvalidArgument`](crate::StoreError)).
    pub fn new() -> Self {
        Self { routes: Vec::new() }
    }

    /// Exactly aggregate `A`, its events as they are: the sources of a one-aggregate
    /// consumer.
    pub fn of<A: Aggregate<Event = E>>() -> Self {
        Self::new().with::<A>(|event| event)
    }

    /// Also takes the events of aggregate `A`, each wrapped by `wrap` (an enum variant's
    /// constructor, `Input::Account`, is such a function).
    pub fn with<A: Aggregate>(self, wrap: impl Fn(A::Event) -> E + Send + Sync + 'static) -> Self {
        self.with_upcasted::<A>(wrap, Upcasters::new())
    }

    /// Also takes the events of aggregate `A`, old ones decoded through `upcasters` (the
    /// chain its repository reads with), each wrapped by `wrap`.
    pub fn with_upcasted<A: Aggregate>(
        mut self,
        wrap: impl Fn(A::Event) -> E + Send + Sync + 'static,
        upcasters: Upcasters,
    ) -> Self {
        self.routes.push(Route {
            aggregate: A::TYPE,
            owns: is_stream_of::<A>,
            upcasters: Arc::new(upcasters),
            decode: Arc::new(move |recorded, upcasters| {
                codec::decode::<A::Event>(recorded, upcasters).map(&wrap)
            }),
        });
        self
    }

    /// Replaces every source's upcaster chain with `upcasters` (what
    /// `HandlerConsumer::with_upcasters` does for a one-aggregate handler).
    pub fn with_upcasters_for_all(mut self, upcasters: Upcasters) -> Self {
        let upcasters = Arc::new(upcasters);
        for route in &mut self.routes {
            route.upcasters = Arc::clone(&upcasters);
        }
        self
    }

    /// The read of the log that takes these aggregates' events and no others: their
    /// categories, in one filter, so they arrive in global order.
    pub fn filter(&self) -> EventFilter {
        EventFilter::all().with_categories(
            self.routes
                .iter()
                .map(|route| crate::aggregate::category(route.aggregate)),
        )
    }

    /// The aggregate types taken, in the order they were added.
    pub fn aggregates(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.routes.iter().map(|route| route.aggregate)
    }

    /// Whether an event of `stream_id` is one of these aggregates'.
    pub fn takes(&self, stream_id: &str) -> bool {
        self.routes.iter().any(|route| (route.owns)(stream_id))
    }

    /// Decodes `recorded` as its aggregate's event, wrapped into an `E`: `None` for a stream
    /// of none of these aggregates, a [`DecodeError`] naming stream, version and type for an
    /// event that does not decode (never skipped).
    pub fn decode(&self, recorded: RecordedEvent) -> Result<Option<EventEnvelope<E>>, DecodeError> {
        let Some(route) = self
            .routes
            .iter()
            .find(|route| (route.owns)(&recorded.stream_id))
        else {
            return Ok(None);
        };
        let event = (route.decode)(&recorded, &route.upcasters)?;
        Ok(Some(recorded.into_envelope(event)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::recorded_now;
    use crate::metadata::Metadata;
    use crate::testing::toy::{Tally, TallyEvent};
    use crate::upcast::RawEvent;
    use uuid::Uuid;

    #[derive(Debug, PartialEq)]
    enum Input {
        Tally(TallyEvent),
    }

    fn recorded(stream_id: &str, event_type: &str, payload: &str) -> RecordedEvent {
        RecordedEvent {
            stream_id: stream_id.into(),
            version: 1,
            position: 7,
            event_id: Uuid::new_v4(),
            event_type: event_type.into(),
            schema_version: 1,
            payload: payload.into(),
            metadata: Metadata::new(),
            recorded_at: recorded_now(),
        }
    }

    #[test]
    fn routes_by_stream_and_wraps() {
        let sources = Sources::new().with::<Tally>(Input::Tally);
        let decoded = sources
            .decode(recorded("Tally-1", "Added", r#"{"n":3}"#))
            .unwrap()
            .unwrap();
        assert_eq!(decoded.event, Input::Tally(TallyEvent::Added { n: 3 }));
        assert_eq!(decoded.position, 7);
        // `Tallyx-1` shares no category; `Tally` alone is a stream of another shape.
        assert!(sources
            .decode(recorded("Other-1", "Added", r#"{"n":3}"#))
            .unwrap()
            .is_none());
        assert!(sources.takes("Tally-9") && !sources.takes("Other-9"));
    }

    #[test]
    fn decodes_through_the_sources_upcasters_and_names_what_fails() {
        let upcasters = Upcasters::new().with("Increased", 1, |old| {
            Ok(RawEvent {
                event_type: "Added".into(),
                schema_version: 1,
                payload: old.payload,
            })
        });
        let sources = Sources::new().with_upcasted::<Tally>(Input::Tally, upcasters);
        let decoded = sources
            .decode(recorded("Tally-1", "Increased", r#"{"n":4}"#))
            .unwrap()
            .unwrap();
        assert_eq!(decoded.event, Input::Tally(TallyEvent::Added { n: 4 }));
        let error = sources
            .decode(recorded("Tally-2", "Added", r#"{"n":"four"}"#))
            .unwrap_err();
        assert_eq!((error.stream_id.as_str(), error.version), ("Tally-2", 1));
    }
}
