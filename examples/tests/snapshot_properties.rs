//! Snapshot properties: for any command sequence and any snapshot interval from 1 to 12,
//! loading a cart or an order from its latest snapshot plus the tail equals replaying its
//! whole stream, now and at every past version, on MemoryStore and on SQLite.

mod strategies;

use cqrs_core::testing::properties::{block_on, check_snapshots};
use cqrs_core::testing::proptest::prelude::*;
use cqrs_core::Aggregate;
use cqrs_examples::cart::Cart;
use cqrs_examples::order::Order;
use cqrs_memory::MemoryStore;
use cqrs_sqlite::SqliteStore;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use strategies::{cart_command, order_command};

/// `check_snapshots` on a SQLite file of its own, so no case sees another's events or
/// snapshots.
fn check_snapshots_on_sqlite<A>(
    id: &str,
    commands: Vec<A::Command>,
    every: u64,
) -> Result<(), TestCaseError>
where
    A: Aggregate + Serialize + DeserializeOwned + PartialEq + Debug,
{
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    block_on(async {
        let store = SqliteStore::open(dir.path().join("events.db"))
            .await
            .map_err(|e| TestCaseError::fail(format!("open: {e}")))?;
        check_snapshots::<A, _>(store, id, commands, every).await
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cart_snapshot_plus_tail_equals_replay_on_memory(
        commands in prop::collection::vec(cart_command(), 0..30),
        every in 1u64..=12,
    ) {
        block_on(check_snapshots::<Cart, _>(MemoryStore::new(), "c-1", commands, every))?;
    }

    #[test]
    fn cart_snapshot_plus_tail_equals_replay_on_sqlite(
        commands in prop::collection::vec(cart_command(), 0..30),
        every in 1u64..=12,
    ) {
        check_snapshots_on_sqlite::<Cart>("c-1", commands, every)?;
    }

    #[test]
    fn order_snapshot_plus_tail_equals_replay_on_memory(
        commands in prop::collection::vec(order_command(), 0..8),
        every in 1u64..=12,
    ) {
        block_on(check_snapshots::<Order, _>(MemoryStore::new(), "o-1", commands, every))?;
    }

    #[test]
    fn order_snapshot_plus_tail_equals_replay_on_sqlite(
        commands in prop::collection::vec(order_command(), 0..8),
        every in 1u64..=12,
    ) {
        check_snapshots_on_sqlite::<Order>("o-1", commands, every)?;
    }
}
