//! `Tally`: the small aggregate the framework's own tests and docs share, so that no test
//! file carries a copy of its own; and `tagged_event`, the raw event store tests append.

use crate::aggregate::Aggregate;
use crate::envelope::NewEvent;
use crate::metadata::Metadata;
// The trait and its derive, as users import them.
use crate::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What happened to a tally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum TallyEvent {
    /// `n` was added (never zero).
    Added {
        /// The amount, positive or negative.
        n: i64,
    },
}

/// What a test asks of a tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TallyCommand {
    /// Records one `Added` event.
    Add(i64),
    /// Records one `Added` event per amount, in order, in one append.
    AddMany(Vec<i64>),
    /// Records nothing: a command that is accepted and appends no event.
    Nothing,
}

/// The tally's only refusal, so tests can tell a domain error from every other failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot add zero")]
pub struct AddZero;

/// A running total and the number of events folded into it; serializable for snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// The sum of every `n` added.
    pub total: i64,
    /// How many `Added` events were applied.
    pub count: u64,
}

impl Aggregate for Tally {
    const TYPE: &'static str = "Tally";
    type Command = TallyCommand;
    type Event = TallyEvent;
    type Error = AddZero;

    fn handle(&self, command: TallyCommand) -> Result<Vec<TallyEvent>, AddZero> {
        let amounts = match command {
            TallyCommand::Add(n) => vec![n],
            TallyCommand::AddMany(amounts) => amounts,
            TallyCommand::Nothing => Vec::new(),
        };
        if amounts.contains(&0) {
            return Err(AddZero);
        }
        Ok(amounts
            .into_iter()
            .map(|n| TallyEvent::Added { n })
            .collect())
    }

    fn apply(&mut self, event: &TallyEvent) {
        let TallyEvent::Added { n } = event;
        self.total = self.total.wrapping_add(*n);
        self.count += 1;
    }
}

/// An event as a store takes it, of type `Tagged` with payload `{"tag": tag}` and a fresh
/// id: for tests of a store itself, which append without an aggregate.
pub fn tagged_event(tag: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "Tagged".to_owned(),
        schema_version: 1,
        payload: format!("{{\"tag\":\"{tag}\"}}"),
        metadata: Metadata::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::AggregateFixture;

    #[test]
    fn a_tally_adds_refuses_zero_and_records_nothing_for_nothing() {
        AggregateFixture::<Tally>::given(vec![TallyEvent::Added { n: 2 }])
            .when(TallyCommand::AddMany(vec![3, -1]))
            .then_expect_events(vec![
                TallyEvent::Added { n: 3 },
                TallyEvent::Added { n: -1 },
            ]);
        AggregateFixture::<Tally>::given_no_previous_events()
            .when(TallyCommand::Add(0))
            .then_expect_error(AddZero);
        AggregateFixture::<Tally>::given_no_previous_events()
            .when(TallyCommand::Nothing)
            .then_expect_events(vec![]);
        let mut tally = Tally::default();
        tally.apply(&TallyEvent::Added { n: 5 });
        tally.apply(&TallyEvent::Added { n: -2 });
        assert_eq!(tally, Tally { total: 3, count: 2 });
    }
}
