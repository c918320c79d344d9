//! The relay against the machine's NATS server: what it publishes, where it resumes, what a
//! second relay can do, and what a refused event does.

mod support;

use cqrs_core::{CheckpointStore, EventStore, ExpectedVersion, Lag, LogRead};
use cqrs_memory::MemoryStore;
use cqrs_nats::message::{self, MSG_ID};
use cqrs_nats::relay::RelayError;
use cqrs_nats::{skip_refused, Relay, RelayConfig};
use cqrs_sqlite::SqliteStore;
use std::time::Duration;
use support::{append, event, TestStream};

fn config(stream: &TestStream) -> RelayConfig {
    RelayConfig::new("relay", stream.name.clone(), stream.prefix.clone())
}

async fn all_events(store: &impl EventStore) -> Vec<cqrs_core::RecordedEvent> {
    store
        .read_log(&LogRead::forward(0, usize::MAX))
        .await
        .unwrap()
}

#[tokio::test]
async fn publishes_every_event_in_position_order_with_its_envelope_and_payload() {
    let stream = TestStream::new().await;
    let store = MemoryStore::new();
    for n in 0..30 {
        let stream_id = ["Order-1", "Order-2", "Cart-a.b"][n % 3];
        append(&store, stream_id, n as u64).await;
    }
    let mut config = config(&stream);
    config.page = 7;
    config.max_in_flight = 4;
    let mut relay = Relay::new(store.clone(), stream.context.clone(), config).start();
    relay.wait_for(30).await.unwrap();

    let stored = all_events(&store).await;
    let published = stream.messages().await;
    assert_eq!(published.len(), 30);
    for ((sequence, subject, event), stored) in published.iter().zip(&stored) {
        assert_eq!(event, stored, "message {sequence}");
        assert_eq!(*subject, message::subject(&stream.prefix, stored));
    }
    assert_eq!(
        published[2].1,
        format!("{}.Cart.Cart-a%2Eb", stream.prefix),
        "a `.` in a stream id is escaped"
    );
    assert_eq!(store.load_checkpoint("relay").await.unwrap(), 30);
    assert_eq!(relay.lag().behind(), 0);
    relay.stop().await.unwrap();
}

#[tokio::test]
async fn the_event_id_is_the_message_id_and_the_payload_is_unchanged() {
    let stream = TestStream::new().await;
    let store = MemoryStore::new();
    let payload = r#"{ "spaced" : "as written",  "n":1 }"#.to_owned();
    let sent = event("Odd", payload.clone());
    store
        .append("Order-9", ExpectedVersion::Any, vec![sent.clone()])
        .await
        .unwrap();
    let mut relay = Relay::new(store, stream.context.clone(), config(&stream)).start();
    relay.wait_for(1).await.unwrap();
    let raw = stream
        .context
        .get_stream(&stream.name)
        .await
        .unwrap()
        .get_raw_message(1)
        .await
        .unwrap();
    assert_eq!(raw.payload.as_ref(), payload.as_bytes());
    assert_eq!(
        raw.headers.get(MSG_ID).map(|v| v.as_str().to_owned()),
        Some(sent.event_id.to_string())
    );
    relay.stop().await.unwrap();
}

#[tokio::test]
async fn resumes_after_the_stream_tip_without_republishing_even_past_the_duplicate_window() {
    // The shortest window the server takes, let pass before the restart: deduplication by
    // event id cannot be what prevents duplicates here.
    let stream = TestStream::on(support::URL, |config| {
        config.duplicate_window = Duration::from_millis(100);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("log.db")).await.unwrap();
    for n in 0..20 {
        append(&store, &format!("Order-{}", n % 4), n).await;
    }
    let mut relay = Relay::new(store.clone(), stream.context.clone(), config(&stream)).start();
    relay.wait_for(20).await.unwrap();
    relay.stop().await.unwrap();

    // A crash after JetStream acknowledged, before the checkpoint was saved.
    store.save_checkpoint("relay", 5).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    for n in 20..25 {
        append(&store, "Order-9", n).await;
    }
    let relay = Relay::new(store.clone(), stream.context.clone(), config(&stream));
    assert_eq!(
        relay.lag().await.unwrap(),
        Lag {
            head: 25,
            checkpoint: 20
        },
        "the tip counts as progress"
    );
    let mut relay = relay.start();
    relay.wait_for(25).await.unwrap();
    relay.stop().await.unwrap();
    assert_eq!(stream.positions().await, (1..=25).collect::<Vec<_>>());
    assert_eq!(store.load_checkpoint("relay").await.unwrap(), 25);
}

#[tokio::test]
async fn two_relays_on_one_log_never_interleave_nor_duplicate() {
    let stream = TestStream::new().await;
    let store = MemoryStore::new();
    let mut tuned = config(&stream);
    tuned.page = 5;
    tuned.max_in_flight = 3;
    let mut first = Relay::new(store.clone(), stream.context.clone(), tuned.clone()).start();
    let mut second = Relay::new(store.clone(), stream.context.clone(), tuned).start();
    for n in 0..200 {
        append(&store, &format!("Order-{}", n % 7), n).await;
        if n % 25 == 0 {
            tokio::task::yield_now().await;
        }
    }
    first.wait_for(200).await.unwrap();
    second.wait_for(200).await.unwrap();
    first.stop().await.unwrap();
    second.stop().await.unwrap();
    assert_eq!(stream.positions().await, (1..=200).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_refused_event_stops_the_relay_naming_it_and_a_recorded_skip_moves_past_it() {
    let stream = TestStream::on(support::URL, |config| config.max_message_size = 1024).await;
    let store = MemoryStore::new();
    for n in 0..3 {
        append(&store, "Order-1", n).await;
    }
    let huge = event("Huge", format!("{{\"blob\":\"{}\"}}", "x".repeat(4096)));
    let huge_id = huge.event_id;
    store
        .append("Order-2", ExpectedVersion::Any, vec![huge])
        .await
        .unwrap();
    append(&store, "Order-1", 5).await;

    let relay = Relay::new(store.clone(), stream.context.clone(), config(&stream));
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let (lag, _) = tokio::sync::watch::channel(Lag {
        head: 0,
        checkpoint: 0,
    });
    let error = relay.run(stopped, lag).await.unwrap_err();
    match &error {
        RelayError::Refused {
            position, event_id, ..
        } => {
            assert_eq!((*position, *event_id), (4, huge_id));
        }
        other => panic!("expected Refused, got {other}"),
    }
    assert!(error.to_string().contains(&huge_id.to_string()), "{error}");
    assert_eq!(stream.positions().await, vec![1, 2, 3]);
    assert_eq!(store.load_checkpoint("relay").await.unwrap(), 3);

    let wrong = skip_refused(&store, &stream.context, &config(&stream), 5, huge_id, "x").await;
    assert!(
        matches!(wrong, Err(RelayError::NotSkippable { .. })),
        "{wrong:?}"
    );
    let record = skip_refused(
        &store,
        &stream.context,
        &config(&stream),
        4,
        huge_id,
        "above max_msg_size; sent by mail",
    )
    .await
    .unwrap();
    assert_eq!(record, 6);

    let mut relay = Relay::new(store.clone(), stream.context.clone(), config(&stream)).start();
    relay.wait_for(6).await.unwrap();
    relay.stop().await.unwrap();
    let published = stream.messages().await;
    let positions: Vec<u64> = published.iter().map(|(_, _, e)| e.position).collect();
    assert_eq!(positions, vec![1, 2, 3, 5, 6]);
    let skip = &published[4].2;
    assert_eq!(skip.stream_id, "RelaySkip-relay");
    assert_eq!(skip.metadata.causation_id, Some(huge_id));
    assert!(skip.payload.contains("sent by mail"), "{}", skip.payload);
}

#[tokio::test]
async fn a_stream_filled_from_another_log_is_refused_not_resumed_after() {
    let stream = TestStream::new().await;
    let first = MemoryStore::new();
    for n in 0..3 {
        append(&first, "Order-1", n).await;
    }
    let mut relay = Relay::new(first, stream.context.clone(), config(&stream)).start();
    relay.wait_for(3).await.unwrap();
    relay.stop().await.unwrap();

    // Another store (or this one restored from an older copy) with five events of its own.
    let other = MemoryStore::new();
    for n in 0..5 {
        append(&other, "Order-2", n).await;
    }
    let relay = Relay::new(other.clone(), stream.context.clone(), config(&stream));
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let (lag, _) = tokio::sync::watch::channel(Lag {
        head: 0,
        checkpoint: 0,
    });
    let error = relay.run(stopped, lag).await.unwrap_err();
    assert!(
        matches!(error, RelayError::Diverged { position: 3, .. }),
        "{error}"
    );
    assert_eq!(other.load_checkpoint("relay").await.unwrap(), 0);
    assert_eq!(stream.positions().await, vec![1, 2, 3]);
}
