//! Both sides on PostgreSQL (`DATABASE_URL`, by default the local server with trust auth),
//! against the machine's NATS server: the relay publishes a `PostgresStore`'s log to a
//! JetStream stream of the test's own, and an `Inbound` commits its reactions to another
//! `PostgresStore` (its `TrackingStore`). Each store lives in a schema of its own, dropped when
//! the test ends; the stream is deleted. Every event is published once, in order, and applied
//! once, across a relay restart (resumed from the stream's tip, nothing republished) and
//! inbound restarts and races (nothing applied twice).

mod support;

use cqrs_core::{
    async_trait, Aggregate, CheckpointStore, DomainEvent, EventEnvelope, EventFilter, EventStore,
    HandlerError, Lag, LogRead, Reaction, Repository,
};
use cqrs_nats::{Inbound, InboundConfig, InboundReactor, Relay, RelayConfig};
use cqrs_postgres::tokio_postgres::{self, NoTls};
use cqrs_postgres::{PostgresOptions, PostgresStore};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;
use support::{append, TestStream};
use uuid::Uuid;

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A schema of the test's own, dropped (with everything in it) when the guard is dropped,
/// also when the test panics. Declare it before the store, so the store goes first.
struct Schema(String);

impl Schema {
    fn new() -> Self {
        Self(format!("cqrs_test_{}", Uuid::new_v4().simple()))
    }

    async fn store(&self) -> PostgresStore {
        PostgresStore::connect_with(PostgresOptions::new(database_url()).schema(&self.0))
            .await
            .expect("a PostgreSQL server at DATABASE_URL")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let schema = self.0.clone();
        // On a thread of its own: the test's runtime may be the one being dropped.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the schema");
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&database_url(), NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.0);
        }
    }
}

/// Not a timing assertion: a guard that turns a hang (a server gone) into a failure.
async fn bounded<T>(what: &str, work: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), work)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after 120 s"))
}

fn relay_config(stream: &TestStream) -> RelayConfig {
    RelayConfig::new("relay", stream.name.clone(), stream.prefix.clone())
}

/// Publishes `store`'s log up to `position`, then stops the relay.
async fn relay_up_to(store: &PostgresStore, stream: &TestStream, position: u64) {
    let mut relay = Relay::new(store.clone(), stream.context.clone(), relay_config(stream)).start();
    bounded("relay", relay.wait_for(position)).await.unwrap();
    relay.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_on_postgres_publishes_each_event_once_and_resumes_after_the_tip() {
    let stream = TestStream::new().await;
    let schema = Schema::new();
    let store = schema.store().await;
    for n in 0..30 {
        append(&store, &format!("Order-{}", n % 4), n).await;
    }
    relay_up_to(&store, &stream, 30).await;
    assert_eq!(store.load_checkpoint("relay").await.unwrap(), 30);

    // A crash after JetStream acknowledged, before the checkpoint was saved.
    store.save_checkpoint("relay", 7).await.unwrap();
    for n in 30..40 {
        append(&store, "Order-9", n).await;
    }
    let relay = Relay::new(store.clone(), stream.context.clone(), relay_config(&stream));
    assert_eq!(
        relay.lag().await.unwrap(),
        Lag {
            head: 40,
            checkpoint: 30
        },
        "the tip counts as progress"
    );
    let mut running = relay.start();
    bounded("relay", running.wait_for(40)).await.unwrap();
    running.stop().await.unwrap();

    let stored = store.read_log(&LogRead::forward(1, 1000)).await.unwrap();
    let published = stream.messages().await;
    assert_eq!(published.len(), 40, "each event once");
    for ((sequence, _, event), stored) in published.iter().zip(&stored) {
        assert_eq!(event, stored, "message {sequence}");
    }
    assert_eq!(store.load_checkpoint("relay").await.unwrap(), 40);
}

/// The receiver's reading of the sender's `Added` events (its own type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum Sent {
    Added { n: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum ReceiptEvent {
    Received { position: u64, n: u64 },
}

/// Records every command as an event, so a command run twice shows as two events.
#[derive(Debug, Default)]
struct Receipt;

impl Aggregate for Receipt {
    const TYPE: &'static str = "Receipt";
    type Command = ReceiptEvent;
    type Event = ReceiptEvent;
    type Error = std::convert::Infallible;
    fn handle(&self, command: ReceiptEvent) -> Result<Vec<ReceiptEvent>, Self::Error> {
        Ok(vec![command])
    }
    fn apply(&mut self, _: &ReceiptEvent) {}
}

/// One receipt per sender event, in the receipt stream named after the sender's stream.
struct Receiving {
    receipts: Repository<Receipt, PostgresStore>,
}

#[async_trait]
impl InboundReactor for Receiving {
    type Event = Sent;
    fn name(&self) -> &str {
        "receiving"
    }
    fn event_types(&self) -> BTreeSet<String> {
        ["Added".to_owned()].into()
    }
    async fn react(
        &self,
        event: &EventEnvelope<Sent>,
        reaction: &mut Reaction,
    ) -> Result<(), HandlerError> {
        let Sent::Added { n } = event.event;
        let received = ReceiptEvent::Received {
            position: event.position,
            n,
        };
        reaction
            .execute(&self.receipts, &event.stream_id, received)
            .await?;
        Ok(())
    }
}

fn inbound(
    stream: &TestStream,
    store: &PostgresStore,
    durable: &str,
) -> Inbound<Receiving, PostgresStore> {
    let mut config = InboundConfig::new("receiving", stream.name.clone(), "");
    config.durable = durable.to_owned();
    let receiving = Receiving {
        receipts: Repository::new(store.clone()),
    };
    Inbound::new(receiving, store.clone(), stream.context.clone(), config)
}

/// Runs an inbound on durable `durable` until it handled JetStream sequence `sequence`.
async fn inbound_up_to(stream: &TestStream, store: &PostgresStore, durable: &str, sequence: u64) {
    let mut running = inbound(stream, store, durable).start();
    bounded("inbound", running.wait_for(sequence))
        .await
        .unwrap();
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_postgres_every_event_is_applied_once_across_restarts() {
    let stream = TestStream::new().await;
    let (sending, receiving) = (Schema::new(), Schema::new());
    let sender = sending.store().await;
    let receiver = receiving.store().await;
    for n in 0..25 {
        append(&sender, &format!("Order-{}", n % 5), n).await;
    }
    relay_up_to(&sender, &stream, 25).await;
    inbound_up_to(&stream, &receiver, "receiving-a", 25).await;

    // The relay restarts after a crash that lost its checkpoint's last save; the inbound
    // restarts on the same durable, then two race on two durables over one checkpoint.
    sender.save_checkpoint("relay", 12).await.unwrap();
    for n in 25..50 {
        append(&sender, &format!("Order-{}", n % 5), n).await;
    }
    relay_up_to(&sender, &stream, 50).await;
    assert_eq!(stream.messages().await.len(), 50, "nothing republished");
    inbound_up_to(&stream, &receiver, "receiving-a", 30).await;
    let mut first = inbound(&stream, &receiver, "receiving-a").start();
    let mut second = inbound(&stream, &receiver, "receiving-b").start();
    bounded("inbound a", first.wait_for(50)).await.unwrap();
    bounded("inbound b", second.wait_for(50)).await.unwrap();
    first.stop().await.unwrap();
    second.stop().await.unwrap();
    inbound_up_to(&stream, &receiver, "receiving-a", 50).await;
    assert_eq!(receiver.load_checkpoint("receiving").await.unwrap(), 50);

    let receipts = receiver
        .read_log(
            &LogRead::forward(1, 1000).matching(EventFilter::all().with_categories(["Receipt"])),
        )
        .await
        .unwrap();
    let mut by_stream: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for receipt in &receipts {
        let payload: serde_json::Value = serde_json::from_str(&receipt.payload).unwrap();
        let position = payload["position"].as_u64().unwrap();
        let n = payload["n"].as_u64().unwrap();
        assert_eq!(
            position,
            n + 1,
            "the sender's position travels with its event"
        );
        by_stream
            .entry(receipt.stream_id.clone())
            .or_default()
            .push(position);
    }
    assert_eq!(receipts.len(), 50, "each event applied once");
    for (stream_id, positions) in &by_stream {
        assert!(
            positions.windows(2).all(|pair| pair[0] < pair[1]),
            "{stream_id}: in the sender's order: {positions:?}"
        );
    }
    let mut all: Vec<u64> = by_stream.into_values().flatten().collect();
    all.sort_unstable();
    assert_eq!(all, (1..=50).collect::<Vec<_>>());
}
