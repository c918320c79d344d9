//! What `#[derive(DomainEvent)]` generates, checked through the codec that stores events.

use cqrs_core::backend::recorded_now;
use cqrs_core::codec::{decode, encode};
use cqrs_core::upcast::Upcasters;
use cqrs_core::{DomainEvent, Metadata, RecordedEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum Shapes {
    Unit,
    Newtype(String),
    Tuple(u32, String),
    Struct { id: u32, name: String },
}

fn shapes() -> Vec<Shapes> {
    vec![
        Shapes::Unit,
        Shapes::Newtype("n".into()),
        Shapes::Tuple(7, "t".into()),
        Shapes::Struct {
            id: 9,
            name: "s".into(),
        },
    ]
}

/// The event as the store hands it back after an append.
fn stored<E: DomainEvent>(event: &E) -> RecordedEvent {
    let new = encode(event, &Metadata::new()).unwrap();
    RecordedEvent {
        stream_id: "S-1".into(),
        version: 1,
        position: 1,
        event_id: new.event_id,
        event_type: new.event_type,
        schema_version: new.schema_version,
        payload: new.payload,
        metadata: new.metadata,
        recorded_at: recorded_now(),
    }
}

/// The variant name serde writes in its default (externally tagged) JSON form.
fn serde_variant_name<E: Serialize>(event: &E) -> String {
    match serde_json::to_value(event).unwrap() {
        serde_json::Value::String(name) => name,
        serde_json::Value::Object(tagged) if tagged.len() == 1 => {
            tagged.into_iter().next().unwrap().0
        }
        other => panic!("not externally tagged: {other}"),
    }
}

/// Stores and reads back each event, checking its type against serde's name for it.
fn assert_round_trips<E: DomainEvent + PartialEq>(events: &[E]) {
    for event in events {
        assert_eq!(event.event_type(), serde_variant_name(event));
        let recorded = stored(event);
        assert_eq!(recorded.event_type, event.event_type());
        assert_eq!(recorded.schema_version, event.schema_version());
        let back: E = decode(&recorded, &Upcasters::new()).unwrap();
        assert_eq!(&back, event);
    }
}

#[test]
fn event_type_is_the_variant_name_for_every_shape() {
    let types: Vec<_> = shapes().iter().map(DomainEvent::event_type).collect();
    assert_eq!(types, ["Unit", "Newtype", "Tuple", "Struct"]);
}

#[test]
fn every_shape_is_stored_under_the_name_serde_writes_and_read_back() {
    assert_round_trips(&shapes());
}

#[test]
fn schema_version_is_one_when_nothing_says_otherwise() {
    assert!(shapes().iter().all(|event| event.schema_version() == 1));
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
#[domain_event(schema_version = 3)]
enum Versioned {
    Inherits,
    #[domain_event(schema_version = 5)]
    Overrides(u8),
    #[domain_event(schema_version = 4294967295)]
    Highest {
        at: u8,
    },
}

#[test]
fn the_enums_schema_version_applies_unless_a_variant_sets_its_own() {
    let versions: Vec<_> = [
        Versioned::Inherits,
        Versioned::Overrides(1),
        Versioned::Highest { at: 2 },
    ]
    .iter()
    .map(DomainEvent::schema_version)
    .collect();
    assert_eq!(versions, [3, 5, u32::MAX]);
    assert_round_trips(&[Versioned::Overrides(1), Versioned::Highest { at: 2 }]);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum OnlyOneVersioned {
    Plain,
    #[domain_event(schema_version = 2)]
    Raised,
}

#[test]
fn a_variants_schema_version_leaves_the_others_at_one() {
    assert_eq!(OnlyOneVersioned::Plain.schema_version(), 1);
    assert_eq!(OnlyOneVersioned::Raised.schema_version(), 2);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
#[allow(non_camel_case_types)] // a keyword as a variant name needs the raw form
enum Raw {
    r#match { id: u8 },
}

#[test]
fn a_raw_identifier_is_stored_without_its_raw_marker() {
    let event = Raw::r#match { id: 1 };
    assert_eq!(event.event_type(), "match");
    assert_round_trips(&[event]);
}

/// Its own where clause is kept beside the bounds the derive adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum Wrapped<T>
where
    T: PartialEq,
{
    Happened(T),
    Nothing,
}

/// Only a type that is an event can be passed here.
fn event_type_of(event: &impl DomainEvent) -> &'static str {
    event.event_type()
}

#[test]
fn a_generic_enum_is_an_event_wherever_its_parameters_fit() {
    assert_eq!(event_type_of(&Wrapped::Happened(3_u32)), "Happened");
    assert_eq!(event_type_of(&Wrapped::<String>::Nothing), "Nothing");
    assert_round_trips(&[Wrapped::Happened("x".to_owned()), Wrapped::Nothing]);
}

/// The serde attributes that keep the stored names and the tagging pass through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
#[serde(rename = "NotWrittenToJson", deny_unknown_fields)]
#[serde(bound(serialize = "", deserialize = ""), crate = "serde")]
enum Accepted {
    #[serde(rename_all = "camelCase")]
    Renamed { item_id: u32 },
    #[serde(alias = "Created")]
    Opened,
}

#[test]
fn serde_attributes_that_keep_variant_names_are_accepted() {
    let event = Accepted::Renamed { item_id: 4 };
    assert_eq!(stored(&event).payload, r#"{"itemId":4}"#);
    assert_round_trips(&[event, Accepted::Opened]);
}

#[test]
fn an_alias_reads_events_stored_under_a_variants_old_name() {
    let mut recorded = stored(&Accepted::Opened);
    recorded.event_type = "Created".into();
    let back: Accepted = decode(&recorded, &Upcasters::new()).unwrap();
    assert_eq!(back, Accepted::Opened);
    assert_eq!(back.event_type(), "Opened");
}

/// Stands in for `cqrs-core` reached under another name: a trait of the same shape, so the
/// impl compiles only if the derive names the path it is given.
mod renamed {
    pub trait DomainEvent {
        fn event_type(&self) -> &'static str;
        fn schema_version(&self) -> u32;
    }
}

#[derive(Debug, cqrs_core::DomainEvent)]
#[domain_event(crate = "renamed", schema_version = 2)]
enum ThroughARenamedDependency {
    Happened,
}

#[test]
fn a_renamed_dependency_is_named_with_crate() {
    let event = ThroughARenamedDependency::Happened;
    let named = (
        renamed::DomainEvent::event_type(&event),
        renamed::DomainEvent::schema_version(&event),
    );
    assert_eq!(named, ("Happened", 2));
}
