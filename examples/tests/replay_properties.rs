//! Replay properties: for generated command sequences (valid and invalid), the state a
//! repository rebuilds from MemoryStore and from SQLite equals the state decided live, and
//! every event, unicode included, survives the JSON round trip.

mod strategies;

use cqrs_core::testing::properties::{block_on, check_event_round_trip, check_replay};
use cqrs_core::testing::proptest::prelude::*;
use cqrs_core::Aggregate;
use cqrs_examples::cart::Cart;
use cqrs_examples::order::Order;
use cqrs_memory::MemoryStore;
use cqrs_sqlite::SqliteStore;
use std::fmt::Debug;
use strategies::{cart_command, cart_event, order_command, order_event};

/// `check_replay` on a SQLite file of its own, so no case sees another's events.
fn check_replay_on_sqlite<A>(id: &str, commands: Vec<A::Command>) -> Result<(), TestCaseError>
where
    A: Aggregate + Clone + PartialEq + Debug,
    A::Event: PartialEq,
    A::Command: Debug,
{
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    block_on(async {
        let store = SqliteStore::open(dir.path().join("events.db"))
            .await
            .map_err(|e| TestCaseError::fail(format!("open: {e}")))?;
        check_replay::<A, _>(store, id, commands).await
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cart_replays_on_memory(commands in prop::collection::vec(cart_command(), 0..30)) {
        block_on(check_replay::<Cart, _>(MemoryStore::new(), "c-1", commands))?;
    }

    #[test]
    fn cart_replays_on_sqlite(commands in prop::collection::vec(cart_command(), 0..30)) {
        check_replay_on_sqlite::<Cart>("c-1", commands)?;
    }

    #[test]
    fn order_replays_on_memory(commands in prop::collection::vec(order_command(), 0..8)) {
        block_on(check_replay::<Order, _>(MemoryStore::new(), "o-1", commands))?;
    }

    #[test]
    fn order_replays_on_sqlite(commands in prop::collection::vec(order_command(), 0..8)) {
        check_replay_on_sqlite::<Order>("o-1", commands)?;
    }

    #[test]
    fn cart_events_round_trip(event in cart_event()) {
        check_event_round_trip(&event)?;
    }

    #[test]
    fn order_events_round_trip(event in order_event()) {
        check_event_round_trip(&event)?;
    }
}
