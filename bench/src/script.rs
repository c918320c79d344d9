//! The per-cart script every cart of W1 and W2 runs (and the bulk stores hold), its cart
//! ids, and what it gives when folded in memory, without any store.

use cqrs_core::Aggregate;
use cqrs_examples::cart::{Cart, CartCommand, CartEvent};

/// Commands (and events) of one cart's script.
pub const EVENTS_PER_CART: u64 = 20;

/// The sum of `total_price` over carts 0..1000 that every system must reproduce.
pub const W1_CHECKSUM_1000: i64 = 18_875_320;

/// The id of cart number `n` in a run: `<prefix>-<n as 7 digits>`.
pub fn script_cart_id(prefix: &str, n: u32) -> String {
    format!("{prefix}-{n:07}")
}

/// The per-cart script for cart number `n`, the same in every system the figures are compared
/// with, so that their checksums can be compared too.
///
/// Steps `A0 A1 A2 U0 A3 A4 R1 A5 U2 A6 A7 R3 A8 U4 A9 C A10 R5 A11 U6`: `Ak` adds `item-k`
/// (quantity `1 + (n + k) % 5`, price `100 + (7n + 13k) % 900`), `Uk` sets `item-k` to
/// `quantity(n, k) + 1 + n % 3`, `Rk` removes `item-k`, `C` applies coupon `SAVE250` (250).
/// Every command is accepted and records exactly one event.
pub fn script(prefix: &str, n: u32) -> Vec<CartCommand> {
    enum Step {
        A(u32),
        U(u32),
        R(u32),
        C,
    }
    use Step::{A, C, R, U};
    const STEPS: [Step; 20] = [
        A(0),
        A(1),
        A(2),
        U(0),
        A(3),
        A(4),
        R(1),
        A(5),
        U(2),
        A(6),
        A(7),
        R(3),
        A(8),
        U(4),
        A(9),
        C,
        A(10),
        R(5),
        A(11),
        U(6),
    ];
    let cart_id = script_cart_id(prefix, n);
    // Reduced first, so that the formulas stay in u32 for any n and k.
    let quantity = |k: u32| 1 + (n % 5 + k % 5) % 5;
    let item_id = |k: u32| format!("item-{k}");
    STEPS
        .iter()
        .map(|step| match *step {
            A(k) => CartCommand::AddItem {
                cart_id: cart_id.clone(),
                item_id: item_id(k),
                quantity: quantity(k),
                price: i64::from(100 + (7 * (n % 900) + 13 * (k % 900)) % 900),
            },
            U(k) => CartCommand::UpdateQuantity {
                cart_id: cart_id.clone(),
                item_id: item_id(k),
                new_quantity: quantity(k) + 1 + n % 3,
            },
            R(k) => CartCommand::RemoveItem {
                cart_id: cart_id.clone(),
                item_id: item_id(k),
            },
            C => CartCommand::ApplyCoupon {
                cart_id: cart_id.clone(),
                coupon_code: "SAVE250".to_owned(),
                discount_amount: 250,
                campaign: None,
            },
        })
        .collect()
}

/// Cart `n`'s script run through `handle` and `apply` alone: the final state and the events.
pub fn fold_script(prefix: &str, n: u32) -> Result<(Cart, Vec<CartEvent>), String> {
    let commands = script(prefix, n);
    let mut cart = Cart::default();
    let mut events = Vec::with_capacity(commands.len());
    for command in commands {
        let decided = cart
            .handle(command)
            .map_err(|e| format!("cart {n}'s script was refused: {e}"))?;
        for event in decided {
            cart.apply(&event);
            events.push(event);
        }
    }
    if u64::try_from(events.len()) != Ok(EVENTS_PER_CART) {
        return Err(format!(
            "cart {n}'s script produced {} events, expected {EVENTS_PER_CART}",
            events.len()
        ));
    }
    Ok((cart, events))
}

/// The sum of the quantities of the `ItemAdded` events among `events`: what a reader that
/// decoded every event must find again.
pub fn added_units_of(events: &[CartEvent]) -> u64 {
    events
        .iter()
        .map(|event| match event {
            CartEvent::ItemAdded { quantity, .. } => u64::from(*quantity),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_follows_the_benchmark_formulas() {
        let commands = script("w1", 7);
        assert_eq!(commands.len(), 20);
        assert_eq!(
            commands[0],
            CartCommand::AddItem {
                cart_id: "w1-0000007".into(),
                item_id: "item-0".into(),
                quantity: 1 + 7 % 5,
                price: 149, // 100 + (7 * 7 + 13 * 0) % 900
            }
        );
        // U0 sets item-0 to quantity(7, 0) + 1 + 7 % 3 = 3 + 1 + 1.
        assert_eq!(
            commands[3],
            CartCommand::UpdateQuantity {
                cart_id: "w1-0000007".into(),
                item_id: "item-0".into(),
                new_quantity: 5,
            }
        );
        // A11: quantity 1 + 18 % 5, price 100 + (49 + 143) % 900.
        assert_eq!(
            commands[18],
            CartCommand::AddItem {
                cart_id: "w1-0000007".into(),
                item_id: "item-11".into(),
                quantity: 4,
                price: 292,
            }
        );
        assert_eq!(
            commands[15],
            CartCommand::ApplyCoupon {
                cart_id: "w1-0000007".into(),
                coupon_code: "SAVE250".into(),
                discount_amount: 250,
                campaign: None,
            }
        );
    }

    #[test]
    fn the_script_events_serialize_as_the_benchmark_specifies() {
        let mut cart = Cart::default();
        let mut payloads = Vec::new();
        for command in script("w1", 7) {
            for event in cart.handle(command).unwrap() {
                cart.apply(&event);
                payloads.push(serde_json::to_string(&event).unwrap());
            }
        }
        assert_eq!(payloads.len(), 20);
        assert_eq!(
            payloads[15],
            r#"{"CouponApplied":{"cart_id":"w1-0000007","coupon_code":"SAVE250","discount_amount":250}}"#
        );
        assert_eq!(
            payloads[0],
            r#"{"ItemAdded":{"cart_id":"w1-0000007","item_id":"item-0","quantity":3,"price":149}}"#
        );
    }

    #[test]
    fn the_formulas_stay_exact_for_the_largest_cart_number() {
        let n = u32::MAX;
        let wide = u64::from(n);
        let commands = script("w1", n);
        assert_eq!(
            commands[18],
            CartCommand::AddItem {
                cart_id: format!("w1-{n}"),
                item_id: "item-11".into(),
                quantity: u32::try_from(1 + (wide + 11) % 5).unwrap(),
                price: i64::try_from(100 + (7 * wide + 13 * 11) % 900).unwrap(),
            }
        );
    }

    #[test]
    fn the_in_memory_fold_of_1000_carts_gives_the_published_checksum() {
        let mut checksum = 0;
        for n in 0..1000 {
            let (cart, events) = fold_script("w1", n).unwrap();
            assert_eq!(events.len(), 20);
            checksum += cart.total_price();
        }
        assert_eq!(checksum, W1_CHECKSUM_1000);
    }
}
