//! The user's side: an aggregate is plain state, an event enum, a command enum, `handle` and `apply`.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// A fact that happened in the domain, named in the past tense.
///
/// Implement it on the aggregate's event enum. Events are stored as JSON in serde's default
/// (externally tagged) enum form: `event_type` must return the variant's serde name, so the
/// type lives in its own column and old events can be upcast before they are deserialized.
///
/// Events are values, so they compare with `PartialEq`: every append proves that the event
/// reads back from its JSON equal to itself, and refuses it otherwise
/// ([`EncodeError::NotReadBack`](crate::codec::EncodeError::NotReadBack)). JSON cannot hold
/// everything a Rust value can: serde_json writes NaN and the infinities as `null`, and
/// `Some(None)` of an `Option<Option<T>>` as `None`. Stored, such an event would fail every
/// later load of its stream, or replay as another value; refused, nothing is appended.
///
/// Derive it (feature `derive`, on by default): `event_type` is then the variant name, and the
/// serde attributes that would store another name or no name (`rename` on a variant,
/// `rename_all`, `tag`, `content`, `untagged`) are refused at compile time.
/// `#[domain_event(schema_version = N)]`, on the enum or on a variant, sets
/// [`schema_version`](Self::schema_version).
///
/// ```
/// # #[cfg(feature = "derive")] { // the doc tests also run without the feature
/// use cqrs_core::DomainEvent;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
/// enum AccountEvent {
///     Opened { owner: String },
///     #[domain_event(schema_version = 2)]
///     Deposited { cents: u64 },
///     Closed,
/// }
///
/// let deposited = AccountEvent::Deposited { cents: 500 };
/// assert_eq!((deposited.event_type(), deposited.schema_version()), ("Deposited", 2));
/// # }
/// ```
///
/// Implement it by hand when the stored names must differ from the variant names, say to
/// keep writing a name that events were stored under before a variant was renamed; serde must
/// then write the same names (`#[serde(rename)]`), since the codec checks it at every append.
///
/// ```
/// use cqrs_core::DomainEvent;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// enum AccountEvent {
///     #[serde(rename = "Created")]
///     Opened { owner: String },
///     Closed,
/// }
///
/// impl DomainEvent for AccountEvent {
///     fn event_type(&self) -> &'static str {
///         match self {
///             AccountEvent::Opened { .. } => "Created",
///             AccountEvent::Closed => "Closed",
///         }
///     }
/// }
/// ```
pub trait DomainEvent:
    Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static
{
    /// The variant's name, stored beside the payload so readers can route and upcast by it.
    fn event_type(&self) -> &'static str;

    /// The schema version this code writes for this event type; raise it when an upcaster
    /// must tell old payloads from new ones (see `Upcasters`).
    fn schema_version(&self) -> u32 {
        1
    }
}

/// A consistency boundary rebuilt from its own events.
///
/// `handle` decides and `apply` only folds. Neither reads a clock, a random number, a global
/// or any I/O: what a decision needs from outside arrives in the command, and what a fold
/// needs is in the event. That is what makes replay deterministic.
pub trait Aggregate: Default + Send + Sync + 'static {
    /// Names the aggregate's streams (`<TYPE>-<id>`), so two aggregate types never share one.
    /// Keep it free of `-` so that stream names stay unambiguous and the streams' category
    /// (see [`category`]) is exactly `TYPE`, the key filtered reads of the log use.
    const TYPE: &'static str;
    /// What callers ask of the aggregate; cloned when a conflicting command is retried.
    type Command: Clone + Send + Sync + 'static;
    /// The facts this aggregate records.
    type Event: DomainEvent;
    /// Why a command was refused; kept apart from store and codec errors.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides which events a command produces, or refuses it; never mutates state.
    fn handle(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state; never fails.
    fn apply(&mut self, event: &Self::Event);
}

/// The stream that holds the events of aggregate `A` with this id: `<A::TYPE>-<id>`.
pub fn stream_id<A: Aggregate>(id: &str) -> String {
    format!("{}-{id}", A::TYPE)
}

/// Whether `stream_id` is a stream of aggregate `A` (`<A::TYPE>-<id>`), the test handlers and
/// projections make on each event they are given (their reads of the log are already
/// filtered by [`category`]; this also holds for a `TYPE` that breaks the no-`-` rule).
pub fn is_stream_of<A: Aggregate>(stream_id: &str) -> bool {
    aggregate_id::<A>(stream_id).is_some()
}

/// The aggregate id of a stream of aggregate `A` (`Cart-42` -> `42`), or `None` when the
/// stream belongs to another aggregate type: the inverse of [`stream_id`].
pub fn aggregate_id<A: Aggregate>(stream_id: &str) -> Option<&str> {
    stream_id.strip_prefix(A::TYPE)?.strip_prefix('-')
}

/// A stream's category: its id up to the first `-` (`Cart-42` -> `Cart`), the whole id when
/// it has none. A stream named by [`stream_id`] has its aggregate's `TYPE` as category, so
/// reads of the log can be restricted to one aggregate type (see `EventFilter`).
pub fn category(stream_id: &str) -> &str {
    stream_id
        .split_once('-')
        .map_or(stream_id, |(category, _)| category)
}

// The toy aggregate lives in the testing kit.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::toy::Tally;

    #[test]
    fn stream_names_and_aggregate_ids_are_inverses() {
        assert_eq!(stream_id::<Tally>("42"), "Tally-42");
        assert_eq!(aggregate_id::<Tally>(&stream_id::<Tally>("42")), Some("42"));
        assert_eq!(aggregate_id::<Tally>("Tally-a-b"), Some("a-b"));
        assert_eq!(aggregate_id::<Tally>("Tally-"), Some(""));
        assert!(is_stream_of::<Tally>("Tally-42"));
    }

    #[test]
    fn a_category_is_the_stream_id_up_to_the_first_dash() {
        assert_eq!(category(&stream_id::<Tally>("42")), Tally::TYPE);
        assert_eq!(category("Cart-42"), "Cart");
        assert_eq!(category("Cart-a-b"), "Cart");
        assert_eq!(category("Cart-"), "Cart");
        assert_eq!(category("Cart"), "Cart");
        assert_eq!(category("-42"), "");
        assert_eq!(category(""), "");
        assert_eq!(category("Käse-1"), "Käse");
    }

    #[test]
    fn streams_of_other_aggregates_are_not_this_ones() {
        for other in [
            "Tallying-1",
            "TallyBook-1",
            "Tally",
            "tally-1",
            "Cart-1",
            "",
        ] {
            assert_eq!(aggregate_id::<Tally>(other), None, "{other}");
            assert!(!is_stream_of::<Tally>(other), "{other}");
        }
    }
}
