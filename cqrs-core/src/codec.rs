//! The JSON codec: events to stored payloads and back, through the upcaster chain.

use crate::aggregate::DomainEvent;
use crate::envelope::{EventEnvelope, EventRef, NewEvent, RecordedEvent};
use crate::metadata::Metadata;
use crate::upcast::{RawEvent, UpcastError, Upcasters};
use uuid::Uuid;

/// Why an event could not be serialized; nothing was appended.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// serde_json refused the value (a map with non-string keys, a failing `Serialize`).
    #[error("cannot serialize event `{event_type}`: {source}")]
    Serialize {
        /// The event's type.
        event_type: &'static str,
        /// What serde_json reported.
        source: serde_json::Error,
    },
    /// The event did not serialize as serde's externally tagged variant named `event_type`.
    #[error(
        "event `{event_type}` serialized as {found}, not as the variant `{event_type}`: derive \
         Serialize on the event enum without #[serde(tag)]/#[serde(untagged)] and return the \
         variant's serde name from event_type()"
    )]
    NotTagged {
        /// What `event_type()` returned.
        event_type: &'static str,
        /// The start of what was serialized.
        found: String,
    },
    /// The event's JSON would not read back as the event: decoding it fails, or gives a value
    /// that is not equal to it. serde_json writes NaN and the infinities as `null` and
    /// `Some(None)` of an `Option<Option<T>>` as `None`; stored, such an event would fail
    /// every later load of its stream (or replay as another value), so it is refused instead.
    #[error("event `{event_type}` would not read back as itself from its JSON: {difference}")]
    NotReadBack {
        /// The event's type.
        event_type: &'static str,
        /// What differed, briefly: the decoder's error, or where the two values part.
        difference: String,
    },
}

/// Why a stored event could not be turned into the current event type.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot decode event `{event_type}` (schema {schema_version}) at stream `{stream_id}` \
     version {version}: {cause}"
)]
pub struct DecodeError {
    /// The stream of the event.
    pub stream_id: String,
    /// Its version in that stream.
    pub version: u64,
    /// Its stored type.
    pub event_type: String,
    /// Its stored schema version.
    pub schema_version: u32,
    /// What went wrong.
    #[source]
    pub cause: DecodeCause,
}

/// The part of decoding that failed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeCause {
    /// The payload is not JSON, or does not fit the event enum.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// An upcaster step failed.
    #[error("{0}")]
    Upcast(#[from] UpcastError),
    /// The event was stored under a schema version above the one this code writes for its
    /// type (a newer release wrote it) and no upcaster took it: read as current, it would
    /// silently lose what the newer schema added.
    #[error(
        "stored under schema version {stored}, newer than this code, which writes version \
         {current} of this event"
    )]
    NewerThanCode {
        /// The schema version as stored (after any upcasting).
        stored: u32,
        /// The schema version this code writes for the decoded event.
        current: u32,
    },
}

/// Serializes an event for appending, under a fresh event id, once it is proven to read
/// back as itself ([`EncodeError::NotReadBack`] otherwise).
///
/// Ids are UUIDv7 (time-ordered): consecutive appends then add to the right edge of the
/// store's unique index on event ids instead of touching a random page of it per event.
pub fn encode<E: DomainEvent>(event: &E, metadata: &Metadata) -> Result<NewEvent, EncodeError> {
    let event_type = event.event_type();
    let json = serde_json::to_string(event)
        .map_err(|source| EncodeError::Serialize { event_type, source })?;
    let payload = strip_variant_tag(json, event_type).map_err(|json| EncodeError::NotTagged {
        event_type,
        found: json.chars().take(80).collect(),
    })?;
    reads_back(event, &payload)?;
    Ok(NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: event.schema_version(),
        payload,
        metadata: metadata.clone(),
    })
}

/// Decodes `payload` as `event` is decoded by every load of its stream (the current schema
/// needs no upcaster) and compares: the check that keeps an event JSON cannot hold out of
/// the store. It reads the text just written, so it costs one decode and one comparison.
fn reads_back<E: DomainEvent>(event: &E, payload: &str) -> Result<(), EncodeError> {
    let difference = match decode_current::<E>(event.event_type(), payload) {
        Ok(back) if back == *event => return Ok(()),
        Ok(back) => where_they_part(event, &back),
        Err(error) => format!("its JSON {} does not decode: {error}", excerpt(payload, 0)),
    };
    Err(EncodeError::NotReadBack {
        event_type: event.event_type(),
        difference,
    })
}

/// Characters of a value shown around the place where it differs.
const SHOWN: usize = 48;

/// Up to [`SHOWN`] characters of `text` from character `from`, with `…` where cut.
fn excerpt(text: &str, from: usize) -> String {
    let mut shown: String = text.chars().skip(from).take(SHOWN).collect();
    if from > 0 {
        shown.insert(0, '…');
    }
    if text.chars().count() > from + SHOWN {
        shown.push('…');
    }
    format!("`{shown}`")
}

/// Where the `Debug` forms of the written and the read-back event part, briefly.
fn where_they_part<E: DomainEvent>(written: &E, read: &E) -> String {
    let (written, read) = (format!("{written:?}"), format!("{read:?}"));
    if written == read {
        return format!(
            "it reads back as {}, which compares unequal",
            excerpt(&read, 0)
        );
    }
    let same = written
        .chars()
        .zip(read.chars())
        .take_while(|(w, r)| w == r)
        .count();
    let from = same.saturating_sub(SHOWN / 2);
    format!(
        "it reads back as {}, not as {}",
        excerpt(&read, from),
        excerpt(&written, from)
    )
}

/// `{"Type":<payload>}` gives `<payload>` (in the same buffer); a unit variant `"Type"`
/// gives `null`. Anything else is handed back.
fn strip_variant_tag(mut json: String, event_type: &str) -> Result<String, String> {
    let bytes = json.as_bytes();
    let name = event_type.as_bytes();
    if bytes.len() == name.len() + 2
        && bytes.first() == Some(&b'"')
        && bytes.last() == Some(&b'"')
        && &bytes[1..=name.len()] == name
    {
        return Ok("null".to_owned());
    }
    let prefix = name.len() + 4; // {"<name>":
    let tagged = bytes.len() > prefix
        && bytes.starts_with(b"{\"")
        && &bytes[2..2 + name.len()] == name
        && &bytes[2 + name.len()..prefix] == b"\":"
        && bytes.last() == Some(&b'}');
    if !tagged {
        return Err(json);
    }
    // Both cuts fall next to ASCII bytes, so the rest stays valid UTF-8.
    json.truncate(json.len() - 1);
    json.drain(..prefix);
    Ok(json)
}

/// Deserializes a stored event into the current event type, upcasting it first if a
/// registered step accepts its type and schema version.
///
/// An event whose schema version (after upcasting) is above the one this code writes for it
/// is refused ([`DecodeCause::NewerThanCode`]), never read as current. One below it that no
/// step takes is read as stored: the weak schema (new fields take their defaults).
pub fn decode<'a, E: DomainEvent>(
    stored: impl Into<EventRef<'a>>,
    upcasters: &Upcasters,
) -> Result<E, DecodeError> {
    let stored = stored.into();
    let fail = |cause: DecodeCause| DecodeError {
        stream_id: stored.stream_id.to_owned(),
        version: stored.version,
        event_type: stored.event_type.to_owned(),
        schema_version: stored.schema_version,
        cause,
    };
    let (event, schema_version): (E, u32) =
        if upcasters.applies_to(stored.event_type, stored.schema_version) {
            let payload = serde_json::from_str(stored.payload).map_err(|e| fail(e.into()))?;
            let current = upcasters
                .upcast(RawEvent {
                    event_type: stored.event_type.to_owned(),
                    schema_version: stored.schema_version,
                    payload,
                })
                .map_err(|e| fail(e.into()))?;
            let mut tagged = serde_json::Map::with_capacity(1);
            tagged.insert(current.event_type, current.payload);
            let event = serde_json::from_value(tagged.into()).map_err(|e| fail(e.into()))?;
            (event, current.schema_version)
        } else {
            let event =
                decode_current(stored.event_type, stored.payload).map_err(|e| fail(e.into()))?;
            (event, stored.schema_version)
        };
    let current = event.schema_version();
    if schema_version > current {
        return Err(fail(DecodeCause::NewerThanCode {
            stored: schema_version,
            current,
        }));
    }
    Ok(event)
}

/// Deserializes a payload stored under the current schema (no upcaster applies).
fn decode_current<E: DomainEvent>(event_type: &str, payload: &str) -> serde_json::Result<E> {
    E::deserialize(tagged::Tagged {
        event_type,
        payload,
    })
}

/// Decodes a stored event together with its envelope.
pub fn decode_envelope<E: DomainEvent>(
    recorded: RecordedEvent,
    upcasters: &Upcasters,
) -> Result<EventEnvelope<E>, DecodeError> {
    let event = decode(&recorded, upcasters)?;
    Ok(recorded.into_envelope(event))
}

mod tagged {
    //! A serde `Deserializer` that reads an event as the externally tagged enum
    //! `{"<event_type>": <payload>}` without building that string: the variant name comes
    //! from the `event_type` column and the variant's body is parsed straight from the
    //! payload text.

    use serde::de::value::StrDeserializer;
    use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
    use serde::Deserialize;

    /// A stored event's type and payload, read as a one-entry map or an enum.
    pub(super) struct Tagged<'a> {
        pub event_type: &'a str,
        pub payload: &'a str,
    }

    /// Parses the whole payload with `parse`, refusing trailing characters.
    fn parse_payload<'a, T>(
        payload: &'a str,
        parse: impl FnOnce(
            &mut serde_json::Deserializer<serde_json::de::StrRead<'a>>,
        ) -> serde_json::Result<T>,
    ) -> serde_json::Result<T> {
        let mut json = serde_json::Deserializer::from_str(payload);
        let value = parse(&mut json)?;
        json.end()?;
        Ok(value)
    }

    impl<'de> de::Deserializer<'de> for Tagged<'de> {
        type Error = serde_json::Error;

        /// Anything but an enum sees what the tagged JSON would give: a one-entry map.
        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> serde_json::Result<V::Value> {
            visitor.visit_map(Entry(Some(self)))
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _variants: &'static [&'static str],
            visitor: V,
        ) -> serde_json::Result<V::Value> {
            visitor.visit_enum(self)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map struct
            identifier ignored_any
        }
    }

    /// The one entry of the map view; `None` once its key was taken.
    struct Entry<'a>(Option<Tagged<'a>>);

    impl<'de> de::MapAccess<'de> for Entry<'de> {
        type Error = serde_json::Error;

        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> serde_json::Result<Option<K::Value>> {
            match &self.0 {
                Some(tagged) => seed.deserialize(name(tagged.event_type)).map(Some),
                None => Ok(None),
            }
        }

        fn next_value_seed<V: DeserializeSeed<'de>>(
            &mut self,
            seed: V,
        ) -> serde_json::Result<V::Value> {
            match self.0.take() {
                Some(tagged) => parse_payload(tagged.payload, |json| seed.deserialize(json)),
                None => Err(de::Error::custom("the map's value was asked for twice")),
            }
        }
    }

    fn name(event_type: &str) -> StrDeserializer<'_, serde_json::Error> {
        event_type.into_deserializer()
    }

    impl<'de> de::EnumAccess<'de> for Tagged<'de> {
        type Error = serde_json::Error;
        type Variant = Body<'de>;

        fn variant_seed<V: DeserializeSeed<'de>>(
            self,
            seed: V,
        ) -> serde_json::Result<(V::Value, Body<'de>)> {
            let variant = seed.deserialize(name(self.event_type))?;
            Ok((variant, Body(self.payload)))
        }
    }

    /// The variant's body: the payload, parsed as the variant's shape asks.
    pub(super) struct Body<'a>(&'a str);

    impl<'de> de::VariantAccess<'de> for Body<'de> {
        type Error = serde_json::Error;

        /// A unit variant is stored with the payload `null`.
        fn unit_variant(self) -> serde_json::Result<()> {
            parse_payload(self.0, |json| <()>::deserialize(json))
        }

        fn newtype_variant_seed<T: DeserializeSeed<'de>>(
            self,
            seed: T,
        ) -> serde_json::Result<T::Value> {
            parse_payload(self.0, |json| seed.deserialize(json))
        }

        fn tuple_variant<V: Visitor<'de>>(
            self,
            len: usize,
            visitor: V,
        ) -> serde_json::Result<V::Value> {
            parse_payload(self.0, |json| {
                de::Deserializer::deserialize_tuple(json, len, visitor)
            })
        }

        fn struct_variant<V: Visitor<'de>>(
            self,
            fields: &'static [&'static str],
            visitor: V,
        ) -> serde_json::Result<V::Value> {
            parse_payload(self.0, |json| {
                de::Deserializer::deserialize_struct(json, "", fields, visitor)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::recorded_now;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Ev {
        Opened { name: String },
        Renamed(String),
        Closed,
    }
    impl DomainEvent for Ev {
        fn event_type(&self) -> &'static str {
            match self {
                Ev::Opened { .. } => "Opened",
                Ev::Renamed(_) => "Renamed",
                Ev::Closed => "Closed",
            }
        }
    }

    fn stored(new: NewEvent) -> RecordedEvent {
        RecordedEvent {
            stream_id: "S-1".into(),
            version: 4,
            position: 9,
            event_id: new.event_id,
            event_type: new.event_type,
            schema_version: new.schema_version,
            payload: new.payload,
            metadata: new.metadata,
            recorded_at: recorded_now(),
        }
    }

    #[test]
    fn every_variant_shape_round_trips_with_type_in_its_own_column() {
        let events = [
            Ev::Opened {
                name: "日本語 \"quoted\" 🚀".into(),
            },
            Ev::Renamed("x".into()),
            Ev::Closed,
        ];
        let payloads = [r#"{"name":"日本語 \"quoted\" 🚀"}"#, r#""x""#, "null"];
        for (event, payload) in events.iter().zip(payloads) {
            let new = encode(event, &Metadata::new()).unwrap();
            assert_eq!(new.event_type, event.event_type());
            assert_eq!(new.payload, payload);
            let back: Ev = decode(&stored(new), &Upcasters::new()).unwrap();
            assert_eq!(&back, event);
        }
    }

    /// A cart-like event enum with struct, tuple and unit-like shapes.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Cart {
        ItemAdded {
            cart_id: String,
            item_id: String,
            quantity: u32,
            price: i64,
        },
        ItemRemoved {
            cart_id: String,
            item_id: String,
        },
        ItemQuantityUpdated {
            cart_id: String,
            item_id: String,
            new_quantity: u32,
        },
        CouponApplied {
            cart_id: String,
            coupon_code: String,
            discount_amount: i64,
        },
        Moved(u32, String),
        Emptied,
    }
    impl DomainEvent for Cart {
        fn event_type(&self) -> &'static str {
            match self {
                Cart::ItemAdded { .. } => "ItemAdded",
                Cart::ItemRemoved { .. } => "ItemRemoved",
                Cart::ItemQuantityUpdated { .. } => "ItemQuantityUpdated",
                Cart::CouponApplied { .. } => "CouponApplied",
                Cart::Moved(..) => "Moved",
                Cart::Emptied => "Emptied",
            }
        }
    }

    fn carts() -> Vec<Cart> {
        let cart_id = || "c-1".to_owned();
        let item_id = || "item-7".to_owned();
        vec![
            Cart::ItemAdded {
                cart_id: cart_id(),
                item_id: item_id(),
                quantity: 3,
                price: -120,
            },
            Cart::ItemRemoved {
                cart_id: cart_id(),
                item_id: item_id(),
            },
            Cart::ItemQuantityUpdated {
                cart_id: cart_id(),
                item_id: item_id(),
                new_quantity: u32::MAX,
            },
            Cart::CouponApplied {
                cart_id: cart_id(),
                coupon_code: "SAVE\\250 \"é\"".into(),
                discount_amount: 250,
            },
            Cart::Moved(4, "aisle \u{1F680}".into()),
            Cart::Emptied,
        ]
    }

    /// What decoding was before the tag-free decoder: the tagged JSON string, parsed.
    fn decode_by_tagging<E: DomainEvent>(recorded: &RecordedEvent) -> serde_json::Result<E> {
        let tagged = format!("{{\"{}\":{}}}", recorded.event_type, recorded.payload);
        serde_json::from_str(&tagged)
    }

    #[test]
    fn every_cart_variant_decodes_as_the_tagged_json_would() {
        for event in carts() {
            let recorded = stored(encode(&event, &Metadata::new()).unwrap());
            let decoded: Cart = decode(&recorded, &Upcasters::new()).unwrap();
            assert_eq!(decoded, event);
            assert_eq!(decode_by_tagging::<Cart>(&recorded).unwrap(), event);
        }
    }

    #[test]
    fn weak_schema_unknown_fields_ignored_and_field_order_free() {
        let mut recorded = stored(encode(&Cart::Emptied, &Metadata::new()).unwrap());
        recorded.event_type = "ItemRemoved".into();
        recorded.payload = r#"{"item_id":"i","extra":[1,{"a":null}],"cart_id":"c"}"#.into();
        let decoded: Cart = decode(&recorded, &Upcasters::new()).unwrap();
        let expected = Cart::ItemRemoved {
            cart_id: "c".into(),
            item_id: "i".into(),
        };
        assert_eq!(decoded, expected);
    }

    /// Decodes `payload` as `event_type` at stream S-1 version 4, expecting a JSON error.
    fn refused(event_type: &str, payload: &str) -> DecodeError {
        let mut recorded = stored(encode(&Cart::Emptied, &Metadata::new()).unwrap());
        recorded.event_type = event_type.into();
        recorded.payload = payload.into();
        let err = decode::<Cart>(&recorded, &Upcasters::new()).unwrap_err();
        assert!(matches!(err.cause, DecodeCause::Json(_)), "{err}");
        assert_eq!((err.stream_id.as_str(), err.version), ("S-1", 4), "{err}");
        assert_eq!(err.event_type, event_type);
        err
    }

    #[test]
    fn an_unknown_event_type_is_a_decode_error_naming_it() {
        let err = refused("ItemStolen", r#"{"cart_id":"c"}"#);
        let message = err.to_string();
        assert!(
            message.contains("unknown variant `ItemStolen`"),
            "{message}"
        );
    }

    #[test]
    fn malformed_payloads_are_decode_errors_naming_stream_and_version() {
        for (event_type, payload) in [
            ("ItemRemoved", r#"{"cart_id":"c","item_id":"i""#), // cut short
            ("ItemRemoved", r#"{"cart_id":"c"}"#),              // a field missing
            ("ItemRemoved", r#"{"cart_id":"c","item_id":"i"} x"#), // trailing text
            (
                "ItemAdded",
                r#"{"cart_id":"c","item_id":"i","quantity":-1,"price":1}"#,
            ),
            ("Emptied", r#"{"a":1}"#), // a unit variant stores null
            ("Moved", r#"[1]"#),       // a tuple variant of two
            ("Moved", r#"{"0":1}"#),   // not a sequence
            ("ItemRemoved", "not json"),
        ] {
            let message = refused(event_type, payload).to_string();
            assert!(
                message.starts_with(&format!(
                    "cannot decode event `{event_type}` (schema 1) at stream `S-1` version 4:"
                )),
                "{message}"
            );
        }
    }

    /// A hand-written `Deserialize` that is not an enum sees the one-entry map it saw before.
    #[derive(Debug, Clone, PartialEq, Serialize)]
    struct AnyShape(serde_json::Value);
    impl<'de> Deserialize<'de> for AnyShape {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            serde_json::Value::deserialize(d).map(AnyShape)
        }
    }
    impl DomainEvent for AnyShape {
        fn event_type(&self) -> &'static str {
            "Any"
        }
    }

    #[test]
    fn a_non_enum_deserialize_reads_a_one_entry_map() {
        let mut recorded = stored(encode(&Ev::Closed, &Metadata::new()).unwrap());
        recorded.event_type = "Shape".into();
        recorded.payload = r#"{"x":[1,2],"y":"z"}"#.into();
        let decoded: AnyShape = decode(&recorded, &Upcasters::new()).unwrap();
        assert_eq!(decoded.0, json!({ "Shape": { "x": [1, 2], "y": "z" } }));
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type")]
    enum Internally {
        A { x: u32 },
    }
    impl DomainEvent for Internally {
        fn event_type(&self) -> &'static str {
            "A"
        }
    }

    #[test]
    fn an_internally_tagged_enum_is_refused_at_encode() {
        let err = encode(&Internally::A { x: 1 }, &Metadata::new()).unwrap_err();
        assert!(
            matches!(
                err,
                EncodeError::NotTagged {
                    event_type: "A",
                    ..
                }
            ),
            "{err}"
        );
    }

    /// Values JSON cannot hold: floats and an option of an option.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Measured {
        Read { celsius: f64, ratio: f32 },
        Set { limit: Option<Option<u32>> },
    }
    impl DomainEvent for Measured {
        fn event_type(&self) -> &'static str {
            match self {
                Measured::Read { .. } => "Read",
                Measured::Set { .. } => "Set",
            }
        }
    }

    fn not_read_back(event: &Measured) -> String {
        match encode(event, &Metadata::new()) {
            Err(EncodeError::NotReadBack {
                event_type,
                difference,
            }) => {
                assert_eq!(event_type, event.event_type());
                difference
            }
            other => panic!("{event:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn non_finite_floats_are_refused_at_encode() {
        for celsius in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let difference = not_read_back(&Measured::Read {
                celsius,
                ratio: 0.5,
            });
            assert!(difference.contains("does not decode"), "{difference}");
            assert!(difference.contains("null"), "{difference}");
        }
        let difference = not_read_back(&Measured::Read {
            celsius: 1.0,
            ratio: f32::NAN,
        });
        assert!(difference.contains("does not decode"), "{difference}");
    }

    #[test]
    fn some_none_is_refused_at_encode_saying_what_came_back() {
        let difference = not_read_back(&Measured::Set { limit: Some(None) });
        assert_eq!(
            difference,
            "it reads back as `Set { limit: None }`, not as `Set { limit: Some(None) }`"
        );
        let err = encode(&Measured::Set { limit: Some(None) }, &Metadata::new()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("event `Set` would not read back as itself from its JSON: "),
            "{err}"
        );
    }

    #[test]
    fn what_json_holds_is_encoded_and_reads_back_equal() {
        let events = [
            Measured::Read {
                celsius: -0.0,
                ratio: f32::MAX,
            },
            Measured::Read {
                celsius: f64::MIN_POSITIVE,
                ratio: 1e-45,
            },
            Measured::Read {
                celsius: 0.1 + 0.2,
                ratio: f32::EPSILON,
            },
            // Read back one bit off without serde_json's `float_roundtrip` (then refused).
            Measured::Read {
                celsius: 4.586070382830824e107,
                ratio: 1.0,
            },
            Measured::Set { limit: None },
            Measured::Set {
                limit: Some(Some(0)),
            },
        ];
        for event in events {
            let new = encode(&event, &Metadata::new()).unwrap();
            let back: Measured = decode(&stored(new), &Upcasters::new()).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn where_they_part_shows_the_place_not_the_whole() {
        let long = "x".repeat(200);
        let written = Ev::Opened {
            name: format!("{long}a{long}"),
        };
        let read = Ev::Opened {
            name: format!("{long}b{long}"),
        };
        let difference = where_they_part(&written, &read);
        assert!(difference.len() < 2 * SHOWN + 80, "{difference}");
        let shown = "x".repeat(SHOWN / 2);
        assert!(difference.contains(&format!("…{shown}b")), "{difference}");
        assert!(difference.contains(&format!("…{shown}a")), "{difference}");
    }

    #[test]
    fn a_bad_payload_names_stream_version_and_type() {
        let mut recorded = stored(encode(&Ev::Closed, &Metadata::new()).unwrap());
        recorded.event_type = "Opened".into();
        recorded.payload = "{\"name\": 12".into();
        let err = decode::<Ev>(&recorded, &Upcasters::new()).unwrap_err();
        let message = err.to_string();
        assert!(
            message
                .starts_with("cannot decode event `Opened` (schema 1) at stream `S-1` version 4:"),
            "{message}"
        );
        assert!(matches!(err.cause, DecodeCause::Json(_)));
    }

    /// `Ev` as stored at schema `schema_version`, version 4 of stream S-1.
    fn opened_at_schema(schema_version: u32, payload: &str) -> RecordedEvent {
        let mut recorded = stored(encode(&Ev::Closed, &Metadata::new()).unwrap());
        recorded.event_type = "Opened".into();
        recorded.schema_version = schema_version;
        recorded.payload = payload.into();
        recorded
    }

    #[test]
    fn an_event_from_a_newer_schema_is_refused_not_read_as_current() {
        // Written by a release whose `Opened` also has an `owner`: read as schema 1, the
        // owner would silently vanish.
        let recorded = opened_at_schema(2, r#"{"name":"n","owner":"ann"}"#);
        let err = decode::<Ev>(&recorded, &Upcasters::new()).unwrap_err();
        assert!(
            matches!(
                err.cause,
                DecodeCause::NewerThanCode {
                    stored: 2,
                    current: 1
                }
            ),
            "{err}"
        );
        assert_eq!(
            (err.stream_id.as_str(), err.version, err.schema_version),
            ("S-1", 4, 2)
        );
        assert_eq!(
            err.to_string(),
            "cannot decode event `Opened` (schema 2) at stream `S-1` version 4: stored under \
             schema version 2, newer than this code, which writes version 1 of this event"
        );
        let envelope = decode_envelope::<Ev>(recorded, &Upcasters::new()).unwrap_err();
        assert!(matches!(envelope.cause, DecodeCause::NewerThanCode { .. }));
    }

    #[test]
    fn the_version_after_upcasting_is_the_one_compared() {
        let recorded = opened_at_schema(7, r#"{"name":"n"}"#);
        let to = |schema_version: u32| {
            Upcasters::new().with("Opened", 7, move |mut e| {
                e.schema_version = schema_version;
                Ok(e)
            })
        };
        let err = decode::<Ev>(&recorded, &to(3)).unwrap_err();
        assert!(
            matches!(
                err.cause,
                DecodeCause::NewerThanCode {
                    stored: 3,
                    current: 1
                }
            ),
            "{err}"
        );
        let event: Ev = decode(&recorded, &to(1)).unwrap();
        assert_eq!(event, Ev::Opened { name: "n".into() });
    }

    #[test]
    fn an_older_schema_no_step_takes_is_read_by_the_weak_schema() {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        enum Later {
            Opened {
                name: String,
                #[serde(default)]
                owner: Option<String>,
            },
        }
        impl DomainEvent for Later {
            fn event_type(&self) -> &'static str {
                "Opened"
            }
            fn schema_version(&self) -> u32 {
                3
            }
        }
        let recorded = opened_at_schema(1, r#"{"name":"n"}"#);
        let event: Later = decode(&recorded, &Upcasters::new()).unwrap();
        let expected = Later::Opened {
            name: "n".into(),
            owner: None,
        };
        assert_eq!(event, expected);
    }

    #[test]
    fn upcasters_rename_and_reshape_before_deserializing() {
        let upcasters = Upcasters::new().with("Created", 1, |e| {
            Ok(RawEvent {
                event_type: "Opened".into(),
                schema_version: 1,
                payload: json!({ "name": e.payload["title"] }),
            })
        });
        let mut recorded = stored(encode(&Ev::Closed, &Metadata::new()).unwrap());
        recorded.event_type = "Created".into();
        recorded.payload = r#"{"title":"old"}"#.into();
        let event: Ev = decode(&recorded, &upcasters).unwrap();
        assert_eq!(event, Ev::Opened { name: "old".into() });
    }
}
