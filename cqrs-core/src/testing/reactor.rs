//! Given/when/then for process managers and other [`Reactor`]s: given events of several
//! aggregates, when one more event, then these commands (nothing is committed).
//!
//! The reactor's repositories read a real store (a `MemoryStore` in tests): the given events
//! are appended to it, the reactor runs on the "when" event as its subscription would
//! deliver it, and the commands it issued are compared, in order, with the expected ones.

use crate::aggregate::{stream_id, Aggregate};
use crate::codec;
use crate::handler::HandlerError;
use crate::metadata::Metadata;
use crate::reaction::{Issued, Reaction, Reactor};
use crate::store::{EventStore, ExpectedVersion};
use std::fmt::Debug;

/// A reactor, the store its repositories read, and the events it is given first.
pub struct ReactorFixture<R, S> {
    reactor: R,
    store: S,
    given: Vec<(String, Vec<crate::envelope::NewEvent>)>,
}

impl<R: Reactor, S: EventStore> ReactorFixture<R, S> {
    /// `reactor`, whose repositories read `store`.
    pub fn new(reactor: R, store: S) -> Self {
        Self {
            reactor,
            store,
            given: Vec::new(),
        }
    }

    /// These events of aggregate `A` with this id happened first (appended, in order, when
    /// [`when`](Self::when) runs).
    #[track_caller]
    pub fn given<A: Aggregate>(
        mut self,
        id: &str,
        events: impl IntoIterator<Item = A::Event>,
    ) -> Self {
        let encoded = events
            .into_iter()
            .map(|event| {
                codec::encode(&event, &Metadata::new())
                    .unwrap_or_else(|error| panic!("a given event does not encode: {error}"))
            })
            .collect();
        self.given.push((stream_id::<A>(id), encoded));
        self
    }

    /// Appends the given events, then `event` of aggregate `A` with this id, and runs the
    /// reactor on it as its subscription would deliver it; nothing the reactor decides is
    /// committed.
    pub async fn when<A: Aggregate>(self, id: &str, event: A::Event) -> ReactionOutcome {
        for (stream, events) in self.given {
            self.store
                .append(&stream, ExpectedVersion::Any, events)
                .await
                .unwrap_or_else(|error| panic!("the given events of `{stream}`: {error}"));
        }
        let stream = stream_id::<A>(id);
        let encoded = codec::encode(&event, &Metadata::new())
            .unwrap_or_else(|error| panic!("the event does not encode: {error}"));
        let appended = self
            .store
            .append(&stream, ExpectedVersion::Any, vec![encoded])
            .await
            .unwrap_or_else(|error| panic!("the event of `{stream}`: {error}"));
        let recorded = appended
            .events
            .into_iter()
            .next()
            .expect("one event appended");
        let envelope = self
            .reactor
            .sources()
            .decode(recorded)
            .unwrap_or_else(|error| panic!("the event does not decode: {error}"))
            .unwrap_or_else(|| {
                panic!(
                    "reactor `{}` takes no event of `{stream}`",
                    self.reactor.name()
                )
            });
        let mut reaction = Reaction::caused_by(&envelope);
        let result = self.reactor.react(&envelope, &mut reaction).await;
        ReactionOutcome {
            result: result.map(|()| reaction),
        }
    }
}

/// A command a reactor is expected to issue: see [`command`] and [`refused_command`].
pub struct ExpectedCommand {
    stream_id: String,
    description: String,
    refused: bool,
    matches: Box<dyn Fn(&Issued) -> bool>,
}

/// Aggregate `A` with this id is expected to be given `command`, and to take it.
pub fn command<A>(id: &str, command: A::Command) -> ExpectedCommand
where
    A: Aggregate,
    A::Command: PartialEq + Debug,
{
    ExpectedCommand {
        stream_id: stream_id::<A>(id),
        description: format!("{command:?}"),
        refused: false,
        matches: Box::new(move |issued| issued.command::<A>() == Some(&command)),
    }
}

/// Aggregate `A` with this id is expected to be given `command`, and to refuse it.
pub fn refused_command<A>(id: &str, expected: A::Command) -> ExpectedCommand
where
    A: Aggregate,
    A::Command: PartialEq + Debug,
{
    ExpectedCommand {
        refused: true,
        ..command::<A>(id, expected)
    }
}

impl Debug for ExpectedCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let outcome = if self.refused { " (refused)" } else { "" };
        write!(f, "{}: {}{outcome}", self.stream_id, self.description)
    }
}

/// What the reactor did with the event, with assertions that say what differed.
pub struct ReactionOutcome {
    result: Result<Reaction, HandlerError>,
}

impl ReactionOutcome {
    /// Asserts the reactor issued exactly these commands, in order, each taken or refused
    /// as expected.
    #[track_caller]
    pub fn then_expect_commands(self, expected: Vec<ExpectedCommand>) {
        let reaction = match self.result {
            Ok(reaction) => reaction,
            Err(error) => panic!("expected commands {expected:?}, the reactor failed: {error}"),
        };
        let issued = reaction.issued();
        let same = issued.len() == expected.len()
            && issued.iter().zip(&expected).all(|(issued, expected)| {
                issued.stream_id == expected.stream_id
                    && issued.refusal.is_some() == expected.refused
                    && (expected.matches)(issued)
            });
        assert!(
            same,
            "the reactor issued other commands\n expected: {expected:?}\n issued:   {issued:?}"
        );
    }

    /// Asserts the reactor issued no command.
    #[track_caller]
    pub fn then_expect_no_commands(self) {
        self.then_expect_commands(Vec::new());
    }

    /// Asserts the reactor failed with an error that satisfies `check`.
    #[track_caller]
    pub fn then_expect_error_matching(self, check: impl FnOnce(&HandlerError) -> bool) {
        match self.result {
            Ok(reaction) => panic!(
                "expected an error, the reactor issued {:?}",
                reaction.issued()
            ),
            Err(error) => assert!(check(&error), "unexpected error {error}"),
        }
    }

    /// The raw outcome: the reaction (its issued commands and the batch it would commit) or
    /// the reactor's error.
    pub fn into_result(self) -> Result<Reaction, HandlerError> {
        self.result
    }
}
