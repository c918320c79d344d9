//! The shopping cart of seed 5 ("minimum event sourcing"), exactly as the benchmarks use it.
//!
//! State, events, commands, `handle` and `apply`, and nothing of the framework but the two
//! traits; then [`upcasters`], the chain that reads events written by older releases.
//! Money is in integer cents; ids are strings.

use cqrs_core::{Aggregate, DomainEvent, RawEvent, Upcasters};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// What happened to a cart; each variant is one fact and carries everything replay needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CartEvent {
    /// Units of an item were put in the cart at a price (added to an existing line).
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

impl DomainEvent for CartEvent {
    fn event_type(&self) -> &'static str {
        match self {
            CartEvent::ItemAdded { .. } => "ItemAdded",
            CartEvent::ItemRemoved { .. } => "ItemRemoved",
            CartEvent::ItemQuantityUpdated { .. } => "ItemQuantityUpdated",
            CartEvent::CouponApplied { .. } => "CouponApplied",
        }
    }

    /// `ItemAdded` is at schema 3, after `ProductAdded` 1 and 2 (see [`upcasters`]); the
    /// other events never changed shape in a way a weak schema cannot absorb.
    fn schema_version(&self) -> u32 {
        match self {
            CartEvent::ItemAdded { .. } => ITEM_ADDED_SCHEMA,
            _ => 1,
        }
    }
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

/// The schema this code writes `ItemAdded` at: the third shape of the "item added" fact.
const ITEM_ADDED_SCHEMA: u32 = 3;

/// The chain that reads cart events written by older releases: stored events are never
/// rewritten, so old rows are converted each time they are read, step by step, into the
/// current [`CartEvent`]. Pass it to `Repository::with_upcasters`.
///
/// The "item added" fact went through three shapes:
/// 1. `ProductAdded` schema 1: `{cart_id, sku, qty, unit_price}`, the price in whole
///    currency units;
/// 2. `ProductAdded` schema 2: `{cart_id, sku, qty, price}`, the price in cents;
/// 3. `ItemAdded` schema 3: `{cart_id, item_id, quantity, price}`, [`CartEvent::ItemAdded`].
///
/// `ItemAdded` rows of schema 1, written before the schema was raised to 3, already have
/// the current shape and are read as stored. A step that meets a payload it cannot convert
/// (a field missing or of the wrong kind) fails with a message naming the field, which the
/// repository reports as a `DecodeError` on that event's stream and version.
pub fn upcasters() -> Upcasters {
    Upcasters::new()
        .with("ProductAdded", 1, product_added_v1_to_v2)
        .with("ProductAdded", 2, product_added_v2_to_item_added_v3)
}

/// `ProductAdded` 1 → 2: `unit_price` in whole currency units becomes `price` in cents
/// (× 100); the other fields pass through untouched.
///
/// Fails if the payload is not an object, or `unit_price` is missing, not a whole number,
/// or too large once in cents.
fn product_added_v1_to_v2(mut event: RawEvent) -> Result<RawEvent, String> {
    let fields = as_object(&mut event.payload)?;
    let unit_price = take_field(fields, "unit_price")?;
    let units = unit_price
        .as_i64()
        .ok_or_else(|| format!("`unit_price` is not a whole number: {unit_price}"))?;
    let cents = units
        .checked_mul(100)
        .ok_or_else(|| format!("`unit_price` {units} overflows once in cents"))?;
    fields.insert("price".to_owned(), json!(cents));
    event.schema_version = 2;
    Ok(event)
}

/// `ProductAdded` 2 → `ItemAdded` 3: the event is renamed, `sku` becomes `item_id` and
/// `qty` becomes `quantity`; `cart_id` and `price` (already in cents) are kept.
///
/// Fails if the payload is not an object or one of the four fields is missing; the values
/// themselves are checked when the result is deserialized into [`CartEvent`].
fn product_added_v2_to_item_added_v3(mut event: RawEvent) -> Result<RawEvent, String> {
    let fields = as_object(&mut event.payload)?;
    let mut current = Map::with_capacity(4);
    for (old, new) in [
        ("cart_id", "cart_id"),
        ("sku", "item_id"),
        ("qty", "quantity"),
        ("price", "price"),
    ] {
        current.insert(new.to_owned(), take_field(fields, old)?);
    }
    Ok(RawEvent {
        event_type: "ItemAdded".to_owned(),
        schema_version: ITEM_ADDED_SCHEMA,
        payload: Value::Object(current),
    })
}

/// The payload's fields, or why an upcaster step cannot read them.
fn as_object(payload: &mut Value) -> Result<&mut Map<String, Value>, String> {
    match payload {
        Value::Object(fields) => Ok(fields),
        other => Err(format!("the payload is not a JSON object: {other}")),
    }
}

/// Removes and returns a field an upcaster step needs, or says which one is missing.
fn take_field(fields: &mut Map<String, Value>, name: &str) -> Result<Value, String> {
    fields
        .remove(name)
        .ok_or_else(|| format!("`{name}` is missing"))
}

/// The id of cart number `n` in a benchmark run: `<prefix>-<n as 7 digits>`.
pub fn script_cart_id(prefix: &str, n: u32) -> String {
    format!("{prefix}-{n:07}")
}

/// The per-cart script of BENCHMARKS.md for cart number `n`, so tests and benchmarks run the
/// very workload whose checksum other frameworks are compared on.
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
    let n = u64::from(n);
    let quantity = |k: u32| (1 + (n + u64::from(k)) % 5) as u32;
    let item_id = |k: u32| format!("item-{k}");
    STEPS
        .iter()
        .map(|step| match *step {
            A(k) => CartCommand::AddItem {
                cart_id: cart_id.clone(),
                item_id: item_id(k),
                quantity: quantity(k),
                price: (100 + (7 * n + 13 * u64::from(k)) % 900) as i64,
            },
            U(k) => CartCommand::UpdateQuantity {
                cart_id: cart_id.clone(),
                item_id: item_id(k),
                new_quantity: quantity(k) + 1 + (n % 3) as u32,
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

    fn product_added(schema_version: u32, payload: Value) -> RawEvent {
        RawEvent {
            event_type: "ProductAdded".into(),
            schema_version,
            payload,
        }
    }

    #[test]
    fn the_chain_takes_product_added_v1_through_v2_to_item_added_v3() {
        let v1 = json!({ "cart_id": "c", "sku": "tea", "qty": 2, "unit_price": 19 });
        let out = upcasters().upcast(product_added(1, v1)).unwrap();
        assert_eq!(out.event_type, "ItemAdded");
        assert_eq!(out.schema_version, 3);
        assert_eq!(
            out.payload,
            json!({ "cart_id": "c", "item_id": "tea", "quantity": 2, "price": 1900 })
        );
        let v2 = json!({ "cart_id": "c", "sku": "cup", "qty": 1, "price": 450 });
        let out = upcasters().upcast(product_added(2, v2)).unwrap();
        assert_eq!(
            out.payload,
            json!({ "cart_id": "c", "item_id": "cup", "quantity": 1, "price": 450 })
        );
    }

    #[test]
    fn current_events_pass_the_chain_untouched() {
        for schema_version in [1, 3] {
            let row = RawEvent {
                event_type: "ItemAdded".into(),
                schema_version,
                payload: json!({ "cart_id": "c", "item_id": "a", "quantity": 1, "price": 1 }),
            };
            assert_eq!(upcasters().upcast(row.clone()).unwrap(), row);
        }
    }

    #[test]
    fn each_step_names_what_it_cannot_convert() {
        let cases = [
            (
                1,
                json!({ "cart_id": "c", "sku": "a", "qty": 1 }),
                "`unit_price` is missing",
            ),
            (
                1,
                json!({ "unit_price": 1.5 }),
                "`unit_price` is not a whole number: 1.5",
            ),
            (
                1,
                json!({ "unit_price": "9" }),
                "`unit_price` is not a whole number: \"9\"",
            ),
            (
                1,
                json!({ "unit_price": i64::MAX }),
                "overflows once in cents",
            ),
            (1, json!([19]), "the payload is not a JSON object"),
            (
                2,
                json!({ "cart_id": "c", "qty": 1, "price": 5 }),
                "`sku` is missing",
            ),
            (
                2,
                json!({ "cart_id": "c", "sku": "a", "price": 5 }),
                "`qty` is missing",
            ),
            (
                2,
                json!({ "sku": "a", "qty": 1, "price": 5 }),
                "`cart_id` is missing",
            ),
            (
                2,
                json!({ "cart_id": "c", "sku": "a", "qty": 1 }),
                "`price` is missing",
            ),
            (2, json!(null), "the payload is not a JSON object"),
        ];
        for (schema_version, payload, expected) in cases {
            let err = upcasters()
                .upcast(product_added(schema_version, payload.clone()))
                .unwrap_err();
            assert_eq!(err.event_type, "ProductAdded", "{payload}");
            assert_eq!(err.schema_version, schema_version, "{payload}");
            assert!(err.reason.contains(expected), "{payload}: {err}");
        }
        // A v1 row whose later fields are missing fails in the step that needs them.
        let err = upcasters()
            .upcast(product_added(
                1,
                json!({ "cart_id": "c", "qty": 1, "unit_price": 2 }),
            ))
            .unwrap_err();
        assert_eq!(
            (err.schema_version, err.reason.as_str()),
            (2, "`sku` is missing")
        );
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
}
