//! Replay properties: for generated command sequences (valid and invalid), the state a
//! repository rebuilds from MemoryStore and from SQLite equals the state decided live, and
//! every event, unicode included, survives the JSON round trip.

use cqrs_core::testing::properties::{block_on, check_event_round_trip, check_replay};
use cqrs_core::Aggregate;
use cqrs_examples::cart::{Cart, CartCommand, CartEvent};
use cqrs_examples::order::{Order, OrderCommand, OrderEvent};
use cqrs_memory::MemoryStore;
use cqrs_sqlite::SqliteStore;
use proptest::prelude::*;
use std::fmt::Debug;

/// A few item ids, so removes and updates sometimes find their item and sometimes miss.
fn item_id() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c"), Just("ü-ñ")].prop_map(String::from)
}

/// Mostly small quantities, zero (refused) included, and now and then one that overflows.
fn quantity() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..5, 1 => Just(u32::MAX)]
}

fn cart_command() -> impl Strategy<Value = CartCommand> {
    let cart_id = || "c-1".to_owned();
    prop_oneof![
        3 => (item_id(), quantity(), -20i64..2000).prop_map(move |(item_id, quantity, price)| {
            CartCommand::AddItem { cart_id: cart_id(), item_id, quantity, price }
        }),
        1 => item_id().prop_map(move |item_id| CartCommand::RemoveItem { cart_id: cart_id(), item_id }),
        1 => (item_id(), 0u32..6).prop_map(move |(item_id, new_quantity)| {
            CartCommand::UpdateQuantity { cart_id: cart_id(), item_id, new_quantity }
        }),
        1 => (prop_oneof![Just(""), Just("SAVE250"), Just("割引")], -50i64..500).prop_map(
            move |(code, discount_amount)| CartCommand::ApplyCoupon {
                cart_id: cart_id(),
                coupon_code: code.to_owned(),
                discount_amount,
            }
        ),
    ]
}

fn order_command() -> impl Strategy<Value = OrderCommand> {
    let order_id = || "o-1".to_owned();
    prop_oneof![
        ("\\PC{0,8}", -10i64..10_000).prop_map(move |(customer_id, total_cents)| {
            OrderCommand::Place {
                order_id: order_id(),
                customer_id,
                total_cents,
            }
        }),
        Just(OrderCommand::Complete {
            order_id: order_id()
        }),
        prop_oneof![
            Just(""),
            Just(" "),
            Just("out of stock"),
            Just("キャンセル")
        ]
        .prop_map(move |reason| OrderCommand::Cancel {
            order_id: order_id(),
            reason: reason.to_owned()
        }),
    ]
}

fn cart_event() -> impl Strategy<Value = CartEvent> {
    prop_oneof![
        ("\\PC*", any::<String>(), any::<u32>(), any::<i64>()).prop_map(
            |(cart_id, item_id, quantity, price)| CartEvent::ItemAdded {
                cart_id,
                item_id,
                quantity,
                price
            }
        ),
        ("\\PC*", any::<String>())
            .prop_map(|(cart_id, item_id)| CartEvent::ItemRemoved { cart_id, item_id }),
        ("\\PC*", any::<String>(), any::<u32>()).prop_map(|(cart_id, item_id, new_quantity)| {
            CartEvent::ItemQuantityUpdated {
                cart_id,
                item_id,
                new_quantity,
            }
        }),
        ("\\PC*", any::<String>(), any::<i64>()).prop_map(
            |(cart_id, coupon_code, discount_amount)| CartEvent::CouponApplied {
                cart_id,
                coupon_code,
                discount_amount,
            }
        ),
    ]
}

fn order_event() -> impl Strategy<Value = OrderEvent> {
    prop_oneof![
        ("\\PC*", any::<String>(), any::<i64>()).prop_map(
            |(order_id, customer_id, total_cents)| OrderEvent::OrderPlaced {
                order_id,
                customer_id,
                total_cents
            }
        ),
        "\\PC*".prop_map(|order_id| OrderEvent::OrderCompleted { order_id }),
        ("\\PC*", any::<String>())
            .prop_map(|(order_id, reason)| OrderEvent::OrderCancelled { order_id, reason }),
    ]
}

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
