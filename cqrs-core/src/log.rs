//! Reading the global log: which events a read takes ([`EventFilter`]), in which direction
//! ([`Direction`]), from where and how many ([`LogRead`]). The store answers a [`LogRead`]
//! with `EventStore::read_log`, so a filter is applied where the events are stored (in SQLite
//! through an index) instead of by reading every event and dropping most of them.
//!
//! Positions stay global: a filtered read returns each event with its place in the whole
//! log, so its last position is a checkpoint from which the same read continues.

use crate::aggregate::{category, Aggregate};
use std::collections::BTreeSet;

/// Which events of the log a read takes: by event type and/or by stream category (the
/// stream id up to its first `-`, which is the aggregate type for streams the repository
/// names).
///
/// Within one list any entry matches (OR); across the two lists both must match (AND); a
/// list left unset takes everything. So `all().with_aggregate::<Cart>()
/// .with_event_types(["ItemAdded", "ItemRemoved"])` takes the carts' additions and removals
/// and nothing else. A list that is set but empty would match no event at all: stores
/// refuse a read with one ([`StoreError::InvalidArgument`](crate::StoreError::InvalidArgument)
/// for argument `filter`), since it is nearly always a list built from an empty selection by
/// mistake, and "nothing" needs no read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EventFilter {
    event_types: Option<BTreeSet<String>>,
    categories: Option<BTreeSet<String>>,
}

impl EventFilter {
    /// Every event: the filter of an unrestricted read.
    pub fn all() -> Self {
        Self::default()
    }

    /// Also takes (or, for the first call, takes only) events of these types.
    pub fn with_event_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.event_types
            .get_or_insert_with(BTreeSet::new)
            .extend(types.into_iter().map(Into::into));
        self
    }

    /// Also takes (or, for the first call, takes only) events of streams in these
    /// categories (`Cart` for `Cart-42`).
    pub fn with_categories<I, S>(mut self, categories: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.categories
            .get_or_insert_with(BTreeSet::new)
            .extend(categories.into_iter().map(Into::into));
        self
    }

    /// Also takes (or takes only) the events of aggregate `A`'s streams: adds `A::TYPE` to
    /// the categories. A `TYPE` containing a `-` (which `Aggregate::TYPE` asks to avoid)
    /// adds its part before the `-`, so the filter takes a superset of `A`'s streams rather
    /// than missing them; [`is_stream_of`](crate::is_stream_of) tells them apart.
    pub fn with_aggregate<A: Aggregate>(self) -> Self {
        self.with_categories([category(A::TYPE)])
    }

    /// The event types taken (`None`: every type).
    pub fn event_types(&self) -> Option<&BTreeSet<String>> {
        self.event_types.as_ref()
    }

    /// The stream categories taken (`None`: every category).
    pub fn categories(&self) -> Option<&BTreeSet<String>> {
        self.categories.as_ref()
    }

    /// Whether the filter takes every event (no list set), so a read need not filter.
    pub fn is_all(&self) -> bool {
        self.event_types.is_none() && self.categories.is_none()
    }

    /// Whether an event of `event_type` in stream `stream_id` is taken: the reference
    /// semantics every store's filtered reads must agree with.
    pub fn matches(&self, stream_id: &str, event_type: &str) -> bool {
        let type_taken = self
            .event_types
            .as_ref()
            .is_none_or(|types| types.contains(event_type));
        let category_taken = self
            .categories
            .as_ref()
            .is_none_or(|categories| categories.contains(category(stream_id)));
        type_taken && category_taken
    }
}

/// Which way a read of the log goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Oldest first: positions `>= from`, ascending (catching up, relaying, replaying).
    #[default]
    Forward,
    /// Newest first: positions `<= from`, descending ("latest events" views, tailing).
    Backward,
}

/// One read of the global log: up to `limit` events from position `from` on, in
/// `direction`, that `filter` takes.
///
/// `from` is inclusive. Forward, `0` and `1` both start at the beginning; backward,
/// `u64::MAX` starts at the end. To read the next page, start one past the last event read
/// (its position plus one forward, minus one backward). A `limit` of 0 is refused
/// ([`StoreError::InvalidArgument`](crate::StoreError::InvalidArgument)); `usize::MAX`
/// reads everything there is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogRead {
    /// The first position wanted (the last one, backward), inclusive.
    pub from: u64,
    /// Oldest or newest first.
    pub direction: Direction,
    /// How many events at most (at least 1).
    pub limit: usize,
    /// Which events; [`EventFilter::all`] takes every one.
    pub filter: EventFilter,
}

impl LogRead {
    /// Up to `limit` events with position `>= from`, oldest first, of every kind.
    pub fn forward(from: u64, limit: usize) -> Self {
        Self {
            from,
            direction: Direction::Forward,
            limit,
            filter: EventFilter::all(),
        }
    }

    /// Up to `limit` events with position `<= from`, newest first, of every kind (pass
    /// `u64::MAX` to start at the end).
    pub fn backward(from: u64, limit: usize) -> Self {
        Self {
            direction: Direction::Backward,
            ..Self::forward(from, limit)
        }
    }

    /// The same read, restricted to the events `filter` takes.
    pub fn matching(self, filter: EventFilter) -> Self {
        Self { filter, ..self }
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::toy::Tally;

    #[test]
    fn a_filter_ands_its_lists_and_ors_within_each() {
        let all = EventFilter::all();
        assert!(all.is_all());
        assert!(all.matches("Cart-1", "ItemAdded"));
        assert!(all.matches("", ""));

        let carts = EventFilter::all().with_categories(["Cart", "Order"]);
        assert!(carts.matches("Cart-1", "ItemAdded"));
        assert!(carts.matches("Order-1", "Placed"));
        assert!(carts.matches("Cart", "ItemAdded"), "no dash: the whole id");
        assert!(!carts.matches("Carts-1", "ItemAdded"));
        assert!(!carts.matches("CartX", "ItemAdded"));

        let added = carts.clone().with_event_types(["ItemAdded", "Placed"]);
        assert!(added.matches("Cart-1", "ItemAdded"));
        assert!(added.matches("Order-7", "Placed"));
        assert!(!added.matches("Cart-1", "ItemRemoved"));
        assert!(!added.matches("User-1", "ItemAdded"));
        assert_eq!(added.event_types().map(|t| t.len()), Some(2), "{added:?}");
        assert_eq!(added.categories(), carts.categories());
    }

    #[test]
    fn lists_grow_with_each_call_and_an_empty_one_matches_nothing() {
        let filter = EventFilter::all()
            .with_event_types(["A"])
            .with_event_types(vec!["B".to_owned()]);
        assert!(filter.matches("s", "A") && filter.matches("s", "B"));
        let nothing = EventFilter::all().with_categories(Vec::<String>::new());
        assert!(!nothing.is_all());
        assert_eq!(nothing.categories().map(BTreeSet::len), Some(0));
        assert!(!nothing.matches("Cart-1", "ItemAdded"));
    }

    #[test]
    fn with_aggregate_takes_the_aggregates_streams() {
        let tallies = EventFilter::all().with_aggregate::<Tally>();
        assert!(tallies.matches(&crate::stream_id::<Tally>("7"), "Added"));
        assert!(!tallies.matches("Tallying-7", "Added"));
        assert_eq!(
            tallies,
            EventFilter::all().with_categories([Tally::TYPE]),
            "the same filter as naming the category"
        );
    }

    #[test]
    fn reads_are_built_forward_backward_and_filtered() {
        let read =
            LogRead::backward(u64::MAX, 10).matching(EventFilter::all().with_aggregate::<Tally>());
        assert_eq!(read.direction, Direction::Backward);
        assert_eq!((read.from, read.limit), (u64::MAX, 10));
        assert!(!read.filter.is_all());
        let forward = LogRead::forward(5, 3);
        assert_eq!(forward.direction, Direction::Forward);
        assert!(forward.filter.is_all());
    }
}
