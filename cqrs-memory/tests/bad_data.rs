//! Bad data and bad input get a typed error, never a silent wrong answer: events JSON cannot
//! hold are refused at append, and nothing is appended.

use cqrs_core::{Aggregate, DomainEvent, EncodeError, EventStore, Repository, RepositoryError};
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
