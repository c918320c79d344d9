//! Given/when/then: test an aggregate's decisions without a store.

use crate::aggregate::Aggregate;
use std::fmt::Debug;

/// An aggregate built from past events, ready to receive one command.
pub struct AggregateFixture<A: Aggregate> {
    state: A,
}

impl<A: Aggregate> AggregateFixture<A> {
    /// The aggregate after these events, folded with `apply` as a replay would.
    pub fn given(events: impl IntoIterator<Item = A::Event>) -> Self {
        let mut state = A::default();
        for event in events {
            state.apply(&event);
        }
        Self { state }
    }

    /// A brand-new aggregate.
    pub fn given_no_previous_events() -> Self {
        Self::given([])
    }

    /// Runs the command through `handle`.
    pub fn when(self, command: A::Command) -> FixtureOutcome<A> {
        FixtureOutcome {
            result: self.state.handle(command),
        }
    }
}

/// What `handle` decided, with assertions that say what differed.
pub struct FixtureOutcome<A: Aggregate> {
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> FixtureOutcome<A> {
    /// Asserts the command produced exactly these events, in order.
    #[track_caller]
    pub fn then_expect_events(self, expected: Vec<A::Event>)
    where
        A::Event: PartialEq,
    {
        match self.result {
            Ok(events) => assert_eq!(events, expected, "the command produced other events"),
            Err(error) => panic!("expected events {expected:?}, the command was refused: {error}"),
        }
    }

    /// Asserts the command was refused with exactly this error.
    #[track_caller]
    pub fn then_expect_error(self, expected: A::Error)
    where
        A::Error: PartialEq,
    {
        match self.result {
            Ok(events) => panic!("expected error {expected:?}, the command produced {events:?}"),
            Err(error) => assert_eq!(error, expected, "the command was refused otherwise"),
        }
    }

    /// Asserts the command was refused with an error that satisfies `check`.
    #[track_caller]
    pub fn then_expect_error_matching(self, check: impl FnOnce(&A::Error) -> bool)
    where
        A::Error: Debug,
    {
        match self.result {
            Ok(events) => panic!("expected an error, the command produced {events:?}"),
            Err(error) => assert!(check(&error), "unexpected error {error:?}"),
        }
    }

    /// The raw outcome, for checks the assertions above do not cover.
    pub fn into_result(self) -> Result<Vec<A::Event>, A::Error> {
        self.result
    }
}
