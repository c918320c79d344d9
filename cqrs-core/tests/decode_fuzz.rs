//! The decode path fuzzed, bounded so that `cargo test` runs it in a few seconds: arbitrary
//! and mutated payloads, metadata, event types, schema versions and upcaster chains (with
//! steps that fail, loop and rename) never panic, and every failure is a typed error naming
//! the stream and version. Arbitrary events through `encode` are either refused or read back
//! equal, and refused exactly when JSON cannot hold them.
#![cfg(feature = "testing")]

use cqrs_core::backend::decode_metadata;
use cqrs_core::codec::{decode, decode_envelope, encode};
use cqrs_core::testing::proptest;
use cqrs_core::{DomainEvent, EncodeError, Metadata, RawEvent, RecordedEvent, Upcasters};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

/// Every shape a variant can take, the values JSON holds only in part, and a newer schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum Fuzzed {
    Measured {
        celsius: f64,
        ratio: f32,
        limit: Option<Option<u32>>,
    },
    Noted {
        text: String,
        tags: Vec<String>,
        #[serde(default)]
        extra: Option<Value>,
    },
    Counted(i64, u8),
    Wrapped(Inner),
    #[domain_event(schema_version = 2)]
    Bumped {
        n: u64,
    },
    Cleared,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Inner {
    Plain,
    Reading { x: Option<f64> },
}

const TYPES: [&str; 6] = [
    "Measured", "Noted", "Counted", "Wrapped", "Bumped", "Cleared",
];

/// Whether JSON can hold `event` so that it reads back equal: what `encode` must decide.
fn json_holds(event: &Fuzzed) -> bool {
    match event {
        Fuzzed::Measured {
            celsius,
            ratio,
            limit,
        } => celsius.is_finite() && ratio.is_finite() && *limit != Some(None),
        // `Some(null)` is written `null`, which reads back as `None`.
        Fuzzed::Noted { extra, .. } => *extra != Some(Value::Null),
        Fuzzed::Wrapped(Inner::Reading { x: Some(x) }) => x.is_finite(),
        _ => true,
    }
}

fn json_values() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // non-finite becomes null
        "\\PC{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{0,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn floats() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        any::<f64>(),
        proptest::num::f64::ANY,
    ]
}

fn events() -> impl Strategy<Value = Fuzzed> {
    let option_option = prop_oneof![
        Just(None),
        Just(Some(None)),
        any::<u32>().prop_map(|n| Some(Some(n))),
    ];
    prop_oneof![
        (
            floats(),
            prop_oneof![any::<f32>(), proptest::num::f32::ANY],
            option_option
        )
            .prop_map(|(celsius, ratio, limit)| Fuzzed::Measured {
                celsius,
                ratio,
                limit,
            }),
        (
            "\\PC{0,12}",
            prop::collection::vec("\\PC{0,4}", 0..3),
            prop::option::of(json_values()),
        )
            .prop_map(|(text, tags, extra)| Fuzzed::Noted { text, tags, extra }),
        (any::<i64>(), any::<u8>()).prop_map(|(a, b)| Fuzzed::Counted(a, b)),
        prop::option::of(floats()).prop_map(|x| Fuzzed::Wrapped(Inner::Reading { x })),
        Just(Fuzzed::Wrapped(Inner::Plain)),
        any::<u64>().prop_map(|n| Fuzzed::Bumped { n }),
        Just(Fuzzed::Cleared),
    ]
}

/// One change to some text's bytes: how a payload or metadata gets damaged.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Cut(prop::sample::Index),
    Insert(prop::sample::Index, Vec<u8>),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let mutation = prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Cut),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..4)
        )
            .prop_map(|(i, bytes)| Mutation::Insert(i, bytes)),
    ];
    prop::collection::vec(mutation, 0..3)
}

fn mutate(text: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for mutation in mutations {
        let len = bytes.len().max(1);
        match mutation {
            Mutation::Flip(at, byte) if !bytes.is_empty() => bytes[at.index(len)] ^= byte,
            Mutation::Cut(at) => bytes.truncate(at.index(len + 1)),
            Mutation::Insert(at, inserted) => {
                let at = at.index(len + 1).min(bytes.len());
                bytes.splice(at..at, inserted.iter().copied());
            }
            Mutation::Flip(..) => {}
        }
    }
    bytes
}

/// The payload text an event's variant body serializes to, as the codec stores it.
fn payload_of(event: &Fuzzed) -> String {
    match serde_json::to_value(event) {
        Ok(Value::Object(tagged)) => tagged.into_iter().next().map(|(_, v)| v),
        Ok(_) => Some(Value::Null), // a unit variant, written as its name, is stored as null
        Err(_) => None,
    }
    .map_or_else(String::new, |payload| payload.to_string())
}

fn payloads() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..48)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        json_values().prop_map(|value| value.to_string()),
        events().prop_map(|event| payload_of(&event)),
        (events(), mutations()).prop_map(|(event, mutations)| {
            String::from_utf8_lossy(&mutate(&payload_of(&event), &mutations)).into_owned()
        }),
    ]
}

/// A stored event's type, schema version and payload, and steps that go with it: random
/// parts; an event as this code writes it (at times at another version, or damaged); or an
/// event under an old name, with the step that renames it (to its version or another).
fn stored_parts() -> impl Strategy<Value = (String, u32, String, Vec<(String, u32, Step)>)> {
    prop_oneof![
        (event_types(), schema_versions(), payloads())
            .prop_map(|(event_type, version, payload)| (event_type, version, payload, vec![])),
        (events(), prop::option::of(schema_versions()), mutations()).prop_map(
            |(event, version, mutations)| {
                let payload = mutate(&payload_of(&event), &mutations);
                (
                    event.event_type().to_owned(),
                    version.unwrap_or(event.schema_version()),
                    String::from_utf8_lossy(&payload).into_owned(),
                    vec![],
                )
            }
        ),
        (events(), prop::option::of(schema_versions())).prop_map(|(event, version)| {
            let renamed = Step::RenameAndSetVersion(
                event.event_type().to_owned(),
                version.unwrap_or(event.schema_version()),
            );
            (
                "Old".to_owned(),
                1,
                payload_of(&event),
                vec![("Old".to_owned(), 1, renamed)],
            )
        }),
    ]
}

fn event_types() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(&TYPES[..]).prop_map(str::to_owned),
        1 => prop::sample::select(&["Old", "Gone"][..]).prop_map(str::to_owned),
        1 => "\\PC{0,10}",
    ]
}

fn schema_versions() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..4, 1 => any::<u32>()]
}

fn metadata_bytes() -> impl Strategy<Value = Vec<u8>> {
    let valid = (
        prop::option::of(any::<u128>()),
        prop::option::of(any::<u128>()),
        prop::collection::btree_map("\\PC{0,6}", "\\PC{0,6}", 0..3),
    )
        .prop_map(|(correlation, causation, custom)| {
            let mut metadata = Metadata::new();
            metadata.correlation_id = correlation.map(Uuid::from_u128);
            metadata.causation_id = causation.map(Uuid::from_u128);
            for (key, value) in custom {
                metadata = metadata.with(key, value);
            }
            serde_json::to_string(&metadata).unwrap_or_default()
        });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        json_values().prop_map(|value| value.to_string().into_bytes()),
        (valid, mutations()).prop_map(|(text, mutations)| mutate(&text, &mutations)),
    ]
}

/// What an upcaster step does with the event it is given.
#[derive(Debug, Clone)]
enum Step {
    Rename(String),
    SetVersion(u32),
    RenameAndSetVersion(String, u32),
    Replace(Value),
    InsertField(String, Value),
    Fail(String),
}

fn steps() -> impl Strategy<Value = Vec<(String, u32, Step)>> {
    let step = prop_oneof![
        event_types().prop_map(Step::Rename),
        schema_versions().prop_map(Step::SetVersion),
        (event_types(), schema_versions()).prop_map(|(t, v)| Step::RenameAndSetVersion(t, v)),
        json_values().prop_map(Step::Replace),
        ("[a-z]{1,6}", json_values()).prop_map(|(k, v)| Step::InsertField(k, v)),
        "\\PC{0,10}".prop_map(Step::Fail),
    ];
    prop::collection::vec((event_types(), schema_versions(), step), 0..5)
}

fn upcasters(steps: &[(String, u32, Step)]) -> Upcasters {
    steps
        .iter()
        .fold(Upcasters::new(), |chain, (event_type, version, step)| {
            let step = step.clone();
            chain.with(event_type, *version, move |mut event: RawEvent| {
                match &step {
                    Step::Rename(to) => event.event_type = to.clone(),
                    Step::SetVersion(to) => event.schema_version = *to,
                    Step::RenameAndSetVersion(to, version) => {
                        event.event_type = to.clone();
                        event.schema_version = *version;
                    }
                    Step::Replace(payload) => event.payload = payload.clone(),
                    Step::InsertField(key, value) => match event.payload.as_object_mut() {
                        Some(fields) => {
                            fields.insert(key.clone(), value.clone());
                        }
                        None => return Err("the payload is not an object".to_owned()),
                    },
                    Step::Fail(reason) => return Err(reason.clone()),
                }
                Ok(event)
            })
        })
}

fn recorded(
    stream_id: String,
    version: u64,
    event_type: String,
    schema_version: u32,
    payload: String,
) -> RecordedEvent {
    RecordedEvent {
        stream_id,
        version,
        position: version,
        event_id: Uuid::nil(),
        event_type,
        schema_version,
        payload,
        metadata: Metadata::new(),
        recorded_at: cqrs_core::backend::recorded_now(),
    }
}

/// The schema version an event ends the chain at, when the chain ends well.
fn chain_end(recorded: &RecordedEvent, upcasters: &Upcasters) -> Option<u32> {
    if !upcasters.applies_to(&recorded.event_type, recorded.schema_version) {
        return Some(recorded.schema_version);
    }
    let payload = serde_json::from_str(&recorded.payload).ok()?;
    let raw = RawEvent {
        event_type: recorded.event_type.clone(),
        schema_version: recorded.schema_version,
        payload,
    };
    upcasters.upcast(raw).ok().map(|end| end.schema_version)
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // A failure is printed with its minimal case; nothing is written into the tree.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn decoding_anything_is_an_event_or_an_error_naming_stream_and_version(
        stream_id in "\\PC{0,12}",
        version in any::<u64>(),
        (event_type, schema_version, payload, first_steps) in stored_parts(),
        steps in steps(),
    ) {
        // The steps that go with the stored event first; a later one for the same key wins.
        let upcasters = upcasters(&[first_steps, steps].concat());
        let stored = recorded(stream_id, version, event_type, schema_version, payload);
        match decode::<Fuzzed>(&stored, &upcasters) {
            Err(error) => {
                prop_assert_eq!(&error.stream_id, &stored.stream_id);
                prop_assert_eq!(error.version, stored.version);
                prop_assert_eq!(&error.event_type, &stored.event_type);
                prop_assert_eq!(error.schema_version, stored.schema_version);
                let prefix = format!(
                    "cannot decode event `{}` (schema {}) at stream `{}` version {}: ",
                    stored.event_type, stored.schema_version, stored.stream_id, stored.version
                );
                prop_assert!(error.to_string().starts_with(&prefix), "{}", error);
            }
            Ok(event) => {
                // Never from a newer schema than the code writes.
                let end = chain_end(&stored, &upcasters);
                prop_assert!(end.is_some_and(|end| end <= event.schema_version()), "{:?}", end);
                // What decodes encodes again, and reads back equal.
                let again = encode(&event, &Metadata::new());
                prop_assert!(again.is_ok(), "{:?} from {:?}: {:?}", event, stored.payload, again);
                if let Ok(again) = again {
                    let back = recorded(
                        "S".into(), 1, again.event_type, again.schema_version, again.payload,
                    );
                    prop_assert_eq!(decode::<Fuzzed>(&back, &Upcasters::new()).ok(), Some(event));
                }
            }
        }
        let envelope = decode_envelope::<Fuzzed>(stored.clone(), &upcasters);
        if let Err(error) = envelope {
            prop_assert_eq!((&error.stream_id, error.version), (&stored.stream_id, stored.version));
        }
    }

    #[test]
    fn metadata_bytes_decode_or_are_refused_and_what_decodes_round_trips(
        bytes in metadata_bytes(),
    ) {
        if let Ok(metadata) = decode_metadata(&bytes) {
            let text = serde_json::to_string(&metadata);
            prop_assert!(text.is_ok(), "{:?}", text);
            if let Ok(text) = text {
                prop_assert_eq!(decode_metadata(text.as_bytes()).ok(), Some(metadata));
            }
        }
    }

    #[test]
    fn an_event_is_refused_at_encode_or_reads_back_equal(event in events()) {
        match encode(&event, &Metadata::new()) {
            Ok(new) => {
                prop_assert!(json_holds(&event), "{:?} was encoded as {}", event, new.payload);
                let stored = recorded(
                    "S".into(), 1, new.event_type, new.schema_version, new.payload,
                );
                let back = decode::<Fuzzed>(&stored, &Upcasters::new());
                prop_assert_eq!(back.ok(), Some(event));
            }
            Err(EncodeError::NotReadBack { event_type, difference }) => {
                prop_assert_eq!(event_type, event.event_type());
                prop_assert!(!json_holds(&event), "{:?} refused: {}", event, difference);
            }
            Err(other) => prop_assert!(false, "{:?}: unexpected {}", event, other),
        }
    }
}

#[test]
fn the_cases_the_fuzzer_must_meet_are_met() {
    // A chain that loops is an error naming the stream, not a hang.
    let looping = Upcasters::new()
        .with("Old", 1, |mut e| {
            e.event_type = "Gone".into();
            Ok(e)
        })
        .with("Gone", 1, |mut e| {
            e.event_type = "Old".into();
            Ok(e)
        });
    let stored = recorded("S-1".into(), 3, "Old".into(), 1, "{}".into());
    let error = decode::<Fuzzed>(&stored, &looping).unwrap_err();
    assert!(error.to_string().contains("did not end"), "{error}");
    // Some(null) in a free-form field would read back as None.
    let noted = Fuzzed::Noted {
        text: String::new(),
        tags: vec![],
        extra: Some(json!(null)),
    };
    assert!(!json_holds(&noted));
    assert!(matches!(
        encode(&noted, &Metadata::new()),
        Err(EncodeError::NotReadBack { .. })
    ));
}
