//! A parked event is never silent: one warn event names the subscription, the position,
//! the event id and the error. (One test per file: it installs a process-wide subscriber,
//! which no other test's events can reach first.)

mod parked_common;

use cqrs_core::{CheckpointStore, EventStore, ParkingStore};
use cqrs_memory::MemoryStore;
use parked_common::{add, parking, Adder, POISON};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Collects what the fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn warnings(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .filter(|line| line.contains("WARN"))
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn a_poison_event_is_parked_with_its_error_said_at_warn_level_and_the_subscription_goes_on() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .without_time()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let store = MemoryStore::new();
    add(&store, "t", &[1, POISON, 2]).await;
    let poison = store.read_stream("Tally-t", 2, 1).await.unwrap().remove(0);
    let adder = Adder::default();
    let subscription = parking(&store, &adder);

    assert_eq!(subscription.catch_up().await.unwrap(), 3);
    assert_eq!(adder.seen(), [1, 2], "the events after it were handled");
    assert_eq!(store.load_checkpoint("adding").await.unwrap(), 3);
    let parked = subscription.parked().await.unwrap();
    assert_eq!(parked, store.parked("adding").await.unwrap());
    let [entry] = &parked[..] else {
        panic!("expected one parked event, got {parked:?}");
    };
    assert_eq!(
        (
            entry.subscription.as_str(),
            entry.position,
            entry.event_id,
            entry.stream_id.as_str(),
            entry.version,
            entry.event_type.as_str(),
            entry.error.as_str(),
            entry.attempts,
        ),
        (
            "adding",
            2,
            poison.event_id,
            "Tally-t",
            2,
            "Added",
            "cannot digest 13",
            2
        )
    );
    // Once, naming the subscription, the event and the error; the retries before it warn
    // too, but not that it was parked.
    let parked_lines: Vec<String> = captured
        .warnings()
        .into_iter()
        .filter(|line| line.contains("parked"))
        .collect();
    let [line] = &parked_lines[..] else {
        panic!("expected one warning that it was parked: {parked_lines:?}");
    };
    for field in [
        "subscription=adding".to_owned(),
        "position=2".to_owned(),
        format!("event_id={}", poison.event_id),
        "error=cannot digest 13".to_owned(),
    ] {
        assert!(line.contains(&field), "{field} missing from {line}");
    }
    // Caught up again: nothing is delivered twice, nothing parked twice.
    assert_eq!(subscription.catch_up().await.unwrap(), 3);
    assert_eq!(adder.seen(), [1, 2]);
    assert_eq!(subscription.parked().await.unwrap().len(), 1);
}
