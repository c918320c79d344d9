//! Proptest strategies for the example domains' commands and events, shared by the property
//! test files (each includes this module with `mod strategies;`).

// Each test crate that includes this module uses only some of the strategies; the rest
// would be reported as dead code in that crate.
#![allow(dead_code)]

use cqrs_core::testing::proptest::prelude::*;
use cqrs_examples::cart::{CartCommand, CartEvent};
use cqrs_examples::order::{OrderCommand, OrderEvent};

/// A few item ids, so removes and updates sometimes find their item and sometimes miss.
pub fn item_id() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c"), Just("ü-ñ")].prop_map(String::from)
}

/// Mostly small quantities, zero (refused) included, and now and then one that overflows.
pub fn quantity() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..5, 1 => Just(u32::MAX)]
}

/// No campaign (the common case, stored without the field), or one of a few.
pub fn campaign() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![Just("spring"), Just("春のセール")].prop_map(String::from))
}

/// Any cart command on cart `c-1`, accepted or refused: adds weigh most, so that removes,
/// updates and a second coupon have lines and coupons to find.
pub fn cart_command() -> impl Strategy<Value = CartCommand> {
    let cart_id = || "c-1".to_owned();
    prop_oneof![
        3 => (item_id(), quantity(), -20i64..2000).prop_map(move |(item_id, quantity, price)| {
            CartCommand::AddItem { cart_id: cart_id(), item_id, quantity, price }
        }),
        1 => item_id().prop_map(move |item_id| CartCommand::RemoveItem { cart_id: cart_id(), item_id }),
        1 => (item_id(), 0u32..6).prop_map(move |(item_id, new_quantity)| {
            CartCommand::UpdateQuantity { cart_id: cart_id(), item_id, new_quantity }
        }),
        1 => (prop_oneof![Just(""), Just("SAVE250"), Just("割引")], -50i64..500, campaign()).prop_map(
            move |(code, discount_amount, campaign)| CartCommand::ApplyCoupon {
                cart_id: cart_id(),
                coupon_code: code.to_owned(),
                discount_amount,
                campaign,
            }
        ),
    ]
}

/// Any order command on order `o-1`, in any lifecycle order.
pub fn order_command() -> impl Strategy<Value = OrderCommand> {
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

/// Any cart event, with arbitrary strings and numbers (not only what `handle` decides).
pub fn cart_event() -> impl Strategy<Value = CartEvent> {
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
        (
            "\\PC*",
            any::<String>(),
            any::<i64>(),
            prop::option::of(any::<String>())
        )
            .prop_map(|(cart_id, coupon_code, discount_amount, campaign)| {
                CartEvent::CouponApplied {
                    cart_id,
                    coupon_code,
                    discount_amount,
                    campaign,
                }
            }),
    ]
}

/// Any order event, with arbitrary strings and totals.
pub fn order_event() -> impl Strategy<Value = OrderEvent> {
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
