//! The shopping cart: items added, removed and re-counted, one coupon, and what the
//! customer pays. The benchmark workloads run this very domain.
//!
//! State, events, commands, `handle` and `apply`, and nothing of the framework but the two
//! traits. Reading events written by older releases is [`upcasters`]' job, kept apart.
//! Money is in integer cents; ids are strings.

mod upcasters;

pub use upcasters::upcasters;

use cqrs_core::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What happened to a cart; each variant is one fact and carries everything replay needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum CartEvent {
    /// Units of an item were put in the cart at a price (added to an existing line). At
    /// schema 3, after `ProductAdded` 1 and 2, which [`upcasters`] read into this shape.
    #[domain_event(schema_version = 3)]
    ItemAdded {
        /// The cart.
        cart_id: String,
        /// The item.
        item_id: String,
        /// How many units were added.
        quantity: u32,
        /// The unit price in cents, which becomes the line's price.
        price: i64,
    },
    /// An item's line was taken out of the cart.
    ItemRemoved {
        /// The cart.
        cart_id: String,
        /// The item.
        item_id: String,
    },
    /// An item's quantity was set to a new value.
    ItemQuantityUpdated {
        /// The cart.
        cart_id: String,
        /// The item.
        item_id: String,
        /// The line's quantity from now on.
        new_quantity: u32,
    },
    /// A coupon was redeemed, lowering the total by a fixed amount.
    CouponApplied {
        /// The cart.
        cart_id: String,
        /// The code that was redeemed.
        coupon_code: String,
        /// The discount in cents.
        discount_amount: i64,
        /// The marketing campaign the coupon came from, if any. Added after the first
        /// release (weak schema): coupons stored without it read as `None`, and a coupon
        /// without one is stored exactly as before the field existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<String>,
    },
}

/// What a customer asks of a cart; each accepted command records exactly one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartCommand {
    /// Put `quantity` units of an item in the cart at `price` cents each.
    AddItem {
        /// The cart.
        cart_id: String,
        /// The item.
        item_id: String,
        /// Units to add, at least 1.
        quantity: u32,
        /// Unit price in cents, not negative; it replaces the line's previous price.
        price: i64,
    },
    /// Take an item's line out of the cart.
    RemoveItem {
        /// The cart.
        cart_id: String,
        /// The item, which must be in the cart.
        item_id: String,
    },
    /// Set the quantity of an item already in the cart.
    UpdateQuantity {
        /// The cart.
        cart_id: String,
        /// The item, which must be in the cart.
        item_id: String,
        /// The new quantity, at least 1 (remove the item to drop it).
        new_quantity: u32,
    },
    /// Redeem a coupon; a cart takes one coupon at most.
    ApplyCoupon {
        /// The cart.
        cart_id: String,
        /// The code, not empty.
        coupon_code: String,
        /// The discount in cents, not negative.
        discount_amount: i64,
        /// The marketing campaign the coupon belongs to, if any.
        campaign: Option<String>,
    },
}

/// Why a cart refused a command, so callers can tell the customer precisely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CartError {
    /// Adding or setting zero units is meaningless; removing is its own command.
    #[error("quantity of item `{item_id}` must be at least 1")]
    ZeroQuantity {
        /// The item concerned.
        item_id: String,
    },
    /// Prices are amounts the customer pays.
    #[error("price of item `{item_id}` must not be negative, got {price}")]
    NegativePrice {
        /// The item concerned.
        item_id: String,
        /// The refused price.
        price: i64,
    },
    /// Adding these units would overflow the line's quantity.
    #[error("item `{item_id}` cannot hold more than {max} units", max = u32::MAX)]
    QuantityOverflow {
        /// The item concerned.
        item_id: String,
    },
    /// The item is not in the cart, so it cannot be removed or updated.
    #[error("item `{item_id}` is not in the cart")]
    ItemNotInCart {
        /// The missing item.
        item_id: String,
    },
    /// A coupon needs a code to be traced back to.
    #[error("coupon code must not be empty")]
    EmptyCouponCode,
    /// A discount never raises the price.
    #[error("discount of coupon `{coupon_code}` must not be negative, got {discount_amount}")]
    NegativeDiscount {
        /// The coupon concerned.
        coupon_code: String,
        /// The refused discount.
        discount_amount: i64,
    },
    /// One coupon per cart.
    #[error("coupon `{applied}` is already applied; `{refused}` cannot be added")]
    CouponAlreadyApplied {
        /// The coupon the cart holds.
        applied: String,
        /// The coupon that was refused.
        refused: String,
    },
}

/// One item's line in the cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Units in the cart.
    pub quantity: u32,
    /// Unit price in cents, as of the latest `ItemAdded`.
    pub price: i64,
}

/// A cart as its events made it: lines by item, the coupon, its campaign and its discount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    lines: BTreeMap<String, Line>,
    coupon: Option<String>,
    // Default: snapshots taken before the field existed still decode.
    #[serde(default)]
    campaign: Option<String>,
    discount: i64,
}

impl Cart {
    /// The lines by item id, in item order, to show or check what the cart holds.
    pub fn lines(&self) -> &BTreeMap<String, Line> {
        &self.lines
    }

    /// The applied coupon's code, if any, since a cart takes only one.
    pub fn coupon(&self) -> Option<&str> {
        self.coupon.as_deref()
    }

    /// The campaign of the applied coupon, if the coupon named one, to credit the campaign.
    pub fn campaign(&self) -> Option<&str> {
        self.campaign.as_deref()
    }

    /// The discount in cents granted by the coupon (0 without one).
    pub fn discount(&self) -> i64 {
        self.discount
    }

    /// `sum(quantity * price) - discount`, in cents: what the customer pays.
    ///
    /// Saturates instead of overflowing, so that no state, however extreme, can panic.
    pub fn total_price(&self) -> i64 {
        self.lines
            .values()
            .map(|line| i64::from(line.quantity).saturating_mul(line.price))
            .fold(0i64, i64::saturating_add)
            .saturating_sub(self.discount)
    }
}

impl fmt::Display for Cart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lines.is_empty() {
            f.write_str("empty cart")?;
        }
        for (i, (item_id, line)) in self.lines.iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{item_id} x{} @{}", line.quantity, line.price)?;
        }
        if let Some(coupon) = &self.coupon {
            write!(f, "; coupon {coupon}")?;
            if let Some(campaign) = &self.campaign {
                write!(f, " ({campaign})")?;
            }
            write!(f, " -{}", self.discount)?;
        }
        write!(f, "; total_price={}", self.total_price())
    }
}

impl Aggregate for Cart {
    const TYPE: &'static str = "Cart";
    type Command = CartCommand;
    type Event = CartEvent;
    type Error = CartError;

    fn handle(&self, command: CartCommand) -> Result<Vec<CartEvent>, CartError> {
        let event = match command {
            CartCommand::AddItem {
                cart_id,
                item_id,
                quantity,
                price,
            } => {
                if quantity == 0 {
                    return Err(CartError::ZeroQuantity { item_id });
                }
                if price < 0 {
                    return Err(CartError::NegativePrice { item_id, price });
                }
                let held = self.lines.get(&item_id).map_or(0, |line| line.quantity);
                if held.checked_add(quantity).is_none() {
                    return Err(CartError::QuantityOverflow { item_id });
                }
                CartEvent::ItemAdded {
                    cart_id,
                    item_id,
                    quantity,
                    price,
                }
            }
            CartCommand::RemoveItem { cart_id, item_id } => {
                self.require_item(&item_id)?;
                CartEvent::ItemRemoved { cart_id, item_id }
            }
            CartCommand::UpdateQuantity {
                cart_id,
                item_id,
                new_quantity,
            } => {
                if new_quantity == 0 {
                    return Err(CartError::ZeroQuantity { item_id });
                }
                self.require_item(&item_id)?;
                CartEvent::ItemQuantityUpdated {
                    cart_id,
                    item_id,
                    new_quantity,
                }
            }
            CartCommand::ApplyCoupon {
                cart_id,
                coupon_code,
                discount_amount,
                campaign,
            } => {
                if coupon_code.is_empty() {
                    return Err(CartError::EmptyCouponCode);
                }
                if discount_amount < 0 {
                    return Err(CartError::NegativeDiscount {
                        coupon_code,
                        discount_amount,
                    });
                }
                if let Some(applied) = &self.coupon {
                    return Err(CartError::CouponAlreadyApplied {
                        applied: applied.clone(),
                        refused: coupon_code,
                    });
                }
                CartEvent::CouponApplied {
                    cart_id,
                    coupon_code,
                    discount_amount,
                    campaign,
                }
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &CartEvent) {
        match event {
            CartEvent::ItemAdded {
                item_id,
                quantity,
                price,
                ..
            } => {
                let line = self.lines.entry(item_id.clone()).or_insert(Line {
                    quantity: 0,
                    price: *price,
                });
                line.quantity = line.quantity.saturating_add(*quantity);
                line.price = *price;
            }
            CartEvent::ItemRemoved { item_id, .. } => {
                self.lines.remove(item_id);
            }
            CartEvent::ItemQuantityUpdated {
                item_id,
                new_quantity,
                ..
            } => {
                if let Some(line) = self.lines.get_mut(item_id) {
                    line.quantity = *new_quantity;
                }
            }
            CartEvent::CouponApplied {
                coupon_code,
                discount_amount,
                campaign,
                ..
            } => {
                self.coupon = Some(coupon_code.clone());
                self.campaign = campaign.clone();
                self.discount = *discount_amount;
            }
        }
    }
}

impl Cart {
    fn require_item(&self, item_id: &str) -> Result<(), CartError> {
        if self.lines.contains_key(item_id) {
            Ok(())
        } else {
            Err(CartError::ItemNotInCart {
                item_id: item_id.to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(item_id: &str, quantity: u32, price: i64) -> CartEvent {
        CartEvent::ItemAdded {
            cart_id: "c".into(),
            item_id: item_id.into(),
            quantity,
            price,
        }
    }

    fn fold(events: &[CartEvent]) -> Cart {
        let mut cart = Cart::default();
        for event in events {
            cart.apply(event);
        }
        cart
    }

    #[test]
    fn adding_to_a_line_sums_quantities_and_takes_the_latest_price() {
        let cart = fold(&[added("a", 2, 100), added("a", 3, 150)]);
        assert_eq!(
            cart.lines().get("a"),
            Some(&Line {
                quantity: 5,
                price: 150
            })
        );
        assert_eq!(cart.total_price(), 750);
    }

    #[test]
    fn total_price_subtracts_the_discount_after_updates_and_removals() {
        let cart = fold(&[
            added("a", 2, 100),
            added("b", 1, 999),
            CartEvent::ItemQuantityUpdated {
                cart_id: "c".into(),
                item_id: "a".into(),
                new_quantity: 4,
            },
            CartEvent::ItemRemoved {
                cart_id: "c".into(),
                item_id: "b".into(),
            },
            CartEvent::CouponApplied {
                cart_id: "c".into(),
                coupon_code: "X".into(),
                discount_amount: 30,
                campaign: None,
            },
        ]);
        assert_eq!(cart.total_price(), 4 * 100 - 30);
        assert_eq!(cart.coupon(), Some("X"));
        assert_eq!(cart.discount(), 30);
        assert_eq!(cart.to_string(), "a x4 @100; coupon X -30; total_price=370");
    }

    #[test]
    fn a_coupon_keeps_its_campaign_and_shows_it() {
        let cart = fold(&[
            added("a", 1, 100),
            CartEvent::CouponApplied {
                cart_id: "c".into(),
                coupon_code: "X".into(),
                discount_amount: 30,
                campaign: Some("spring".into()),
            },
        ]);
        assert_eq!(cart.campaign(), Some("spring"));
        assert_eq!(
            cart.to_string(),
            "a x1 @100; coupon X (spring) -30; total_price=70"
        );
    }

    #[test]
    fn a_snapshot_taken_before_campaigns_existed_still_decodes() {
        let old = r#"{"lines":{"a":{"quantity":2,"price":5}},"coupon":"X","discount":3}"#;
        let cart: Cart = serde_json::from_str(old).unwrap();
        assert_eq!(cart.campaign(), None);
        assert_eq!(cart.coupon(), Some("X"));
        assert_eq!(cart.total_price(), 7);
    }

    #[test]
    fn only_item_added_moved_to_schema_3() {
        assert_eq!(added("a", 1, 1).schema_version(), 3);
        let removed = CartEvent::ItemRemoved {
            cart_id: "c".into(),
            item_id: "a".into(),
        };
        assert_eq!(removed.schema_version(), 1);
    }

    #[test]
    fn extreme_lines_saturate_instead_of_panicking() {
        let cart = fold(&[
            added("a", u32::MAX, i64::MAX),
            added("b", u32::MAX, i64::MAX),
        ]);
        assert_eq!(cart.total_price(), i64::MAX);
        let cart = fold(&[added("a", u32::MAX, 1), added("a", u32::MAX, 1)]);
        assert_eq!(cart.lines()["a"].quantity, u32::MAX);
    }
}
