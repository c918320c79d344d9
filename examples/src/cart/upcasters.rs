//! The chain that reads cart events written by older releases into today's
//! [`CartEvent`](super::CartEvent), with the steps it is made of.

use cqrs_core::{RawEvent, Upcasters};
use serde_json::{json, Map, Value};

/// The schema `ItemAdded` is written at today (its `#[domain_event(schema_version)]`): the
/// third shape of the "item added" fact, where the chain ends.
const ITEM_ADDED_SCHEMA: u32 = 3;

/// The chain that reads cart events written by older releases: stored events are never
/// rewritten, so old rows are converted each time they are read, step by step, into the
/// current [`CartEvent`](super::CartEvent). Pass it to `Repository::with_upcasters`.
///
/// The "item added" fact went through three shapes:
/// 1. `ProductAdded` schema 1: `{cart_id, sku, qty, unit_price}`, the price in whole
///    currency units;
/// 2. `ProductAdded` schema 2: `{cart_id, sku, qty, price}`, the price in cents;
/// 3. `ItemAdded` schema 3: `{cart_id, item_id, quantity, price}`,
///    [`CartEvent::ItemAdded`](super::CartEvent::ItemAdded).
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
/// themselves are checked when the result is deserialized into [`CartEvent`](super::CartEvent).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cart::CartEvent;
    use cqrs_core::DomainEvent;

    #[test]
    fn the_chain_ends_at_the_schema_item_added_is_written_at() {
        let current = CartEvent::ItemAdded {
            cart_id: "c".into(),
            item_id: "i".into(),
            quantity: 1,
            price: 1,
        };
        assert_eq!(current.schema_version(), ITEM_ADDED_SCHEMA);
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
}
