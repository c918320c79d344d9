//! Bad data and bad input get a typed error, never a silent wrong answer: events JSON cannot
//! hold are refused at append, events from a newer schema are refused at load, and nothing is
//! appended on top of either.

use cqrs_core::codec::encode;
use cqrs_core::{
    Aggregate, DecodeCause, DomainEvent, EncodeError, EventStore, ExpectedVersion, Metadata,
    Repository, RepositoryError,
};
use cqrs_memory::MemoryStore;
use serde::{Deserialize, Serialize};

/// Readings JSON cannot always hold: a float, and a limit that is unset, cleared or set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum GaugeEvent {
    Read { celsius: f64 },
    LimitSet { limit: Option<Option<u32>> },
}

#[derive(Debug, Default)]
struct Gauge {
    readings: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("never refused")]
struct Never;

impl Aggregate for Gauge {
    const TYPE: &'static str = "Gauge";
    type Command = GaugeEvent;
    type Event = GaugeEvent;
    type Error = Never;

    fn handle(&self, command: GaugeEvent) -> Result<Vec<GaugeEvent>, Never> {
        Ok(vec![command])
    }

    fn apply(&mut self, _: &GaugeEvent) {
        self.readings += 1;
    }
}

#[tokio::test]
async fn an_event_json_cannot_hold_is_refused_and_nothing_is_appended() {
    let store = MemoryStore::new();
    let gauges = Repository::<Gauge, _>::new(store.clone());
    gauges
        .execute("g", GaugeEvent::Read { celsius: 21.5 })
        .await
        .unwrap();
    for unreadable in [
        GaugeEvent::Read { celsius: f64::NAN },
        GaugeEvent::Read {
            celsius: f64::INFINITY,
        },
        GaugeEvent::LimitSet { limit: Some(None) },
    ] {
        match gauges.execute("g", unreadable.clone()).await {
            Err(RepositoryError::Encode(EncodeError::NotReadBack { event_type, .. })) => {
                assert_eq!(event_type, unreadable.event_type());
            }
            other => panic!("{unreadable:?} was not refused: {other:?}"),
        }
        assert_eq!(store.stream_version("Gauge-g").await.unwrap(), Some(1));
    }
    let loaded = gauges.load("g").await.unwrap();
    assert_eq!((loaded.version, loaded.state.readings), (1, 1));
}

#[tokio::test]
async fn an_event_from_a_newer_schema_fails_load_and_execute_and_nothing_is_appended() {
    let store = MemoryStore::new();
    let gauges = Repository::<Gauge, _>::new(store.clone());
    gauges
        .execute("g", GaugeEvent::Read { celsius: 20.0 })
        .await
        .unwrap();
    // What a newer release appends: `Read` at schema 2, with a field this code does not know.
    let mut newer = encode(&GaugeEvent::Read { celsius: 21.0 }, &Metadata::new()).unwrap();
    newer.schema_version = 2;
    newer.payload = r#"{"celsius":21.0,"sensor":"north"}"#.into();
    store
        .append("Gauge-g", ExpectedVersion::Exact(1), vec![newer])
        .await
        .unwrap();

    let is_newer = |result: Result<_, RepositoryError<Never>>| match result {
        Err(RepositoryError::Decode(error)) => {
            assert_eq!((error.stream_id.as_str(), error.version), ("Gauge-g", 2));
            assert!(
                matches!(
                    error.cause,
                    DecodeCause::NewerThanCode {
                        stored: 2,
                        current: 1
                    }
                ),
                "{error}"
            );
            assert!(
                error.to_string().contains("newer than this code"),
                "{error}"
            );
        }
        Err(other) => panic!("expected a decode error, got {other}"),
        Ok(_) => panic!("an event from a newer schema was read as current"),
    };
    is_newer(gauges.load("g").await.map(|_| ()));
    let execute = gauges
        .execute("g", GaugeEvent::Read { celsius: 22.0 })
        .await;
    is_newer(execute.map(|_| ()));
    assert_eq!(store.stream_version("Gauge-g").await.unwrap(), Some(2));
}
