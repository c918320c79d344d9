//! The inbound against the machine's NATS server: another context's events, relayed, decoded
//! into the receiver's own types (with an upcaster), their commands committed exactly once
//! however many consumers race over them and however often they restart.

mod support;

use cqrs_core::{
    async_trait, Aggregate, DomainEvent, EventEnvelope, EventStore, ExpectedVersion, HandlerError,
    NewEvent, Reaction, Repository, Upcasters,
};
use cqrs_memory::MemoryStore;
use cqrs_nats::inbound::InboundError;
use cqrs_nats::{Inbound, InboundConfig, InboundReactor, Relay, RelayConfig};
use cqrs_sqlite::SqliteStore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeSet;
use support::{event, TestStream};

/// The sender's order events as the receiving context reads them (its own type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum OrderEvent {
    #[domain_event(schema_version = 2)]
    OrderPlaced {
        order_id: String,
        amount: u64,
    },
    OrderCancelled {
        order_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum ShipmentEvent {
    Created { amount: u64 },
    Cancelled,
}

/// Records every command as an event, so a command run twice shows as two events.
#[derive(Debug, Default)]
struct Shipment;

impl Aggregate for Shipment {
    const TYPE: &'static str = "Shipment";
    type Command = ShipmentEvent;
    type Event = ShipmentEvent;
    type Error = std::convert::Infallible;
    fn handle(&self, command: ShipmentEvent) -> Result<Vec<ShipmentEvent>, Self::Error> {
        Ok(vec![command])
    }
    fn apply(&mut self, _: &ShipmentEvent) {}
}

struct Shipping {
    shipments: Repository<Shipment, SqliteStore>,
}

#[async_trait]
impl InboundReactor for Shipping {
    type Event = OrderEvent;
    fn name(&self) -> &str {
        "shipping"
    }
    fn event_types(&self) -> BTreeSet<String> {
        ["OrderPlaced", "OrderCancelled"].map(String::from).into()
    }
    /// The sender's first schema named the fields `order` and `total`.
    fn upcasters(&self) -> Upcasters {
        Upcasters::new().with("OrderPlaced", 1, |mut raw| {
            let (order, total) = (raw.payload["order"].take(), raw.payload["total"].take());
            raw.payload = json!({ "order_id": order, "amount": total });
            raw.schema_version = 2;
            Ok(raw)
        })
    }
    async fn react(
        &self,
        event: &EventEnvelope<OrderEvent>,
        reaction: &mut Reaction,
    ) -> Result<(), HandlerError> {
        let (id, command) = match &event.event {
            OrderEvent::OrderPlaced { order_id, amount } => {
                (order_id, ShipmentEvent::Created { amount: *amount })
            }
            OrderEvent::OrderCancelled { order_id } => (order_id, ShipmentEvent::Cancelled),
        };
        reaction.execute(&self.shipments, id, command).await?;
        Ok(())
    }
}

fn placed(order: &str, total: u64) -> NewEvent {
    event(
        "OrderPlaced",
        json!({ "order": order, "total": total }).to_string(),
    )
}

/// Publishes `events` (each to its own order stream) through a relay; returns the last
/// JetStream sequence.
async fn publish(stream: &TestStream, events: Vec<(String, NewEvent)>) -> u64 {
    let sender = MemoryStore::new();
    let mut last = 0;
    for (stream_id, event) in events {
        let appended = sender
            .append(&stream_id, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
        last = appended.events[0].position;
    }
    let config = RelayConfig::new("relay", stream.name.clone(), stream.prefix.clone());
    let mut relay = Relay::new(sender, stream.context.clone(), config).start();
    relay.wait_for(last).await.unwrap();
    relay.stop().await.unwrap();
    last
}

fn inbound(
    stream: &TestStream,
    store: &SqliteStore,
    durable: &str,
) -> Inbound<Shipping, SqliteStore> {
    let mut config = InboundConfig::new(
        "shipping",
        stream.name.clone(),
        format!("{}.Order.>", stream.prefix),
    );
    config.durable = durable.to_owned();
    let shipping = Shipping {
        shipments: Repository::new(store.clone()),
    };
    Inbound::new(shipping, store.clone(), stream.context.clone(), config)
}

#[tokio::test]
async fn racing_and_restarted_inbounds_commit_each_message_once() {
    let stream = TestStream::new().await;
    let mut events = Vec::new();
    for n in 0..40u64 {
        let order = format!("o{n}");
        events.push((format!("Order-{order}"), placed(&order, n + 1)));
        events.push((
            format!("Order-{order}"),
            event("OrderNoted", "{}".to_owned()),
        ));
        if n % 4 == 0 {
            let cancelled = json!({ "order_id": order }).to_string();
            events.push((format!("Order-{order}"), event("OrderCancelled", cancelled)));
        }
    }
    let last = publish(&stream, events).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("shipping.db"))
        .await
        .unwrap();

    let mut first = inbound(&stream, &store, "shipping-a").start();
    let mut second = inbound(&stream, &store, "shipping-b").start();
    first.wait_for(last).await.unwrap();
    second.wait_for(last).await.unwrap();
    first.stop().await.unwrap();
    second.stop().await.unwrap();
    // A restart recreates the consumer from the checkpoint: nothing is handled again.
    let mut again = inbound(&stream, &store, "shipping-a").start();
    again.wait_for(last).await.unwrap();
    again.stop().await.unwrap();

    for n in 0..40u64 {
        let shipment = store
            .read_stream(&format!("Shipment-o{n}"), 1, 10)
            .await
            .unwrap();
        let kinds: Vec<&str> = shipment.iter().map(|e| e.event_type.as_str()).collect();
        let expected = if n % 4 == 0 {
            vec!["Created", "Cancelled"]
        } else {
            vec!["Created"]
        };
        assert_eq!(kinds, expected, "order o{n}");
        assert_eq!(
            shipment[0].payload,
            format!("{{\"amount\":{}}}", n + 1),
            "upcast from the sender's schema 1"
        );
    }
    let shipments = store.stream_version("Shipment-o0").await.unwrap();
    assert_eq!(shipments, Some(2));
}

#[tokio::test]
async fn a_message_that_does_not_decode_stops_the_inbound_naming_its_sequence() {
    let stream = TestStream::new().await;
    let bad = event("OrderCancelled", json!({ "order": 7 }).to_string());
    let last = publish(
        &stream,
        vec![
            ("Order-1".to_owned(), placed("1", 5)),
            ("Order-2".to_owned(), bad),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("shipping.db"))
        .await
        .unwrap();
    let mut running = inbound(&stream, &store, "shipping").start();
    let error = running.wait_for(last).await.unwrap_err();
    match &error {
        InboundError::Decode {
            sequence, source, ..
        } => {
            assert_eq!(*sequence, 2);
            assert_eq!(source.stream_id, "Order-2");
            assert_eq!(source.event_type, "OrderCancelled");
        }
        other => panic!("expected a decode error, got {other}"),
    }
    assert_eq!(store.stream_version("Shipment-1").await.unwrap(), Some(1));
    assert_eq!(store.stream_version("Shipment-7").await.unwrap(), None);
}
