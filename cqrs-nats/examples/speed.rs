//! End to end speed of the relay and the inbound against a NATS server (default
//! 127.0.0.1:4222, or the first argument): `cargo run --release -p cqrs-nats --example speed`.
//!
//! Prints, measured in the same run on a stream of its own (deleted at the end):
//! - the limit: a hand-written `async-nats` loop publishing the same messages (subject,
//!   headers, payload) with the same number in flight;
//! - the relay's throughput over a log of the same events, and its ratio to the limit;
//! - at a steady 1,000 appends/s, the p50 / p99 / max latency from append to published
//!   (JetStream acknowledged, the relay's checkpoint) and from append to applied (an inbound
//!   in the same process committing each message with its checkpoint).

use async_nats::jetstream::{self, stream};
use cqrs_core::{async_trait, DomainEvent, EventEnvelope, EventStore, ExpectedVersion};
use cqrs_core::{HandlerError, Metadata, NewEvent, Reaction};
use cqrs_memory::MemoryStore;
use cqrs_nats::message;
use cqrs_nats::{Inbound, InboundConfig, InboundReactor, Relay, RelayConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

const EVENTS: u64 = 20_000;
const IN_FLIGHT: usize = 256;
const STEADY_EVENTS: u64 = 3_000;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn new_event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "Measured".to_owned(),
        schema_version: 1,
        payload: format!("{{\"n\":{n},\"note\":\"an order line of ordinary size\"}}"),
        metadata: Metadata::new().with_correlation_id(Uuid::now_v7()),
    }
}

/// The receiver's reading of the events: it only needs them to arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum Seen {
    Measured { n: u64 },
}

/// Notes, for each event applied, how long after its append it was.
struct Stopwatch {
    appended: Arc<Mutex<Vec<Option<Instant>>>>,
    latencies: Arc<Mutex<Vec<Duration>>>,
}

#[async_trait]
impl InboundReactor for Stopwatch {
    type Event = Seen;
    fn name(&self) -> &str {
        "stopwatch"
    }
    fn event_types(&self) -> BTreeSet<String> {
        BTreeSet::from(["Measured".to_owned()])
    }
    async fn react(
        &self,
        event: &EventEnvelope<Seen>,
        _: &mut Reaction,
    ) -> Result<(), HandlerError> {
        let Seen::Measured { n } = event.event;
        let appended = self.appended.lock().map_err(|e| e.to_string())?;
        if let Some(Some(at)) = appended.get(usize::try_from(n)?) {
            self.latencies
                .lock()
                .map_err(|e| e.to_string())?
                .push(at.elapsed());
        }
        Ok(())
    }
}

fn percentile(sorted: &[Duration], per_cent: usize) -> Duration {
    let index = sorted.len().saturating_sub(1) * per_cent / 100;
    sorted.get(index).copied().unwrap_or_default()
}

fn show(what: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "{what:<28} p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}  ({} events)",
        percentile(&latencies, 50),
        percentile(&latencies, 99),
        latencies.last().copied().unwrap_or_default(),
        latencies.len()
    );
}

/// A stream of our own for `<prefix>.>`, deleted when the run ends.
async fn fresh_stream(context: &jetstream::Context, tag: &str) -> Result<(String, String), Error> {
    let id = Uuid::new_v4().simple().to_string();
    let (name, prefix) = (format!("speed_{tag}_{id}"), format!("speed_{tag}_{id}"));
    context
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{prefix}.>")],
            ..Default::default()
        })
        .await?;
    Ok((name, prefix))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4222".to_owned());
    let context = jetstream::new(async_nats::connect(&url).await?);
    let store = MemoryStore::new();
    for n in 0..EVENTS {
        store
            .append(
                &format!("Order-{}", n % 100),
                ExpectedVersion::Any,
                vec![new_event(n)],
            )
            .await?;
    }
    let events = store.read_all(0, usize::MAX).await?;

    // The limit: the same messages, hand-published with IN_FLIGHT acknowledgements pending.
    let (limit_stream, limit_prefix) = fresh_stream(&context, "limit").await?;
    let started = Instant::now();
    let mut pending = VecDeque::new();
    for event in &events {
        if pending.len() >= IN_FLIGHT {
            if let Some(ack) = pending.pop_front() {
                let ack: async_nats::jetstream::context::PublishAckFuture = ack;
                ack.await?;
            }
        }
        let ack = context
            .publish_with_headers(
                message::subject(&limit_prefix, event),
                message::headers(event),
                event.payload.clone().into_bytes().into(),
            )
            .await?;
        pending.push_back(ack);
    }
    for ack in pending {
        ack.await?;
    }
    let limit = EVENTS as f64 / started.elapsed().as_secs_f64();
    context.delete_stream(&limit_stream).await?;

    // The relay over the same log.
    let (relay_stream, relay_prefix) = fresh_stream(&context, "relay").await?;
    let mut config = RelayConfig::new("speed", relay_stream.clone(), relay_prefix);
    config.max_in_flight = IN_FLIGHT;
    let started = Instant::now();
    let relay = Relay::new(store, context.clone(), config).start();
    let mut relay = relay;
    relay.wait_for(EVENTS).await?;
    let relayed = EVENTS as f64 / started.elapsed().as_secs_f64();
    relay.stop().await?;
    context.delete_stream(&relay_stream).await?;
    println!("hand-written publish loop    {limit:>10.0} events/s ({IN_FLIGHT} in flight)");
    println!(
        "relay                        {relayed:>10.0} events/s ({:.2}x the loop)",
        relayed / limit
    );

    // Steady load: 1,000 appends/s, each timed to published and to applied.
    let (steady_stream, steady_prefix) = fresh_stream(&context, "steady").await?;
    let sender = MemoryStore::new();
    let receiver = MemoryStore::new();
    let appended = Arc::new(Mutex::new(vec![None; usize::try_from(STEADY_EVENTS)?]));
    let applied = Arc::new(Mutex::new(Vec::new()));
    let stopwatch = Stopwatch {
        appended: Arc::clone(&appended),
        latencies: Arc::clone(&applied),
    };
    let inbound_config =
        InboundConfig::new("speed", steady_stream.clone(), format!("{steady_prefix}.>"));
    let mut inbound = Inbound::new(stopwatch, receiver, context.clone(), inbound_config).start();
    let relay_config = RelayConfig::new("speed", steady_stream.clone(), steady_prefix);
    let mut relay = Relay::new(sender.clone(), context.clone(), relay_config).start();
    // Positions are 1..=STEADY_EVENTS: event n is at position n + 1.
    let watched = Arc::clone(&appended);
    let watcher = tokio::spawn(async move {
        let mut published = Vec::new();
        for n in 0..STEADY_EVENTS {
            relay.wait_for(n + 1).await?;
            let appended = watched.lock().map_err(|e| e.to_string())?;
            if let Some(Some(at)) = appended.get(usize::try_from(n)?) {
                published.push(at.elapsed());
            }
        }
        Ok::<_, Error>((relay, published))
    });
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    for n in 0..STEADY_EVENTS {
        tick.tick().await;
        // Noted before the append, so no reader can see the event before its time is set.
        appended.lock().map_err(|e| e.to_string())?[usize::try_from(n)?] = Some(Instant::now());
        sender
            .append(
                &format!("Order-{}", n % 100),
                ExpectedVersion::Any,
                vec![new_event(n)],
            )
            .await?;
    }
    let (relay, published) = watcher.await??;
    inbound.wait_for(STEADY_EVENTS).await?;
    relay.stop().await?;
    inbound.stop().await?;
    context.delete_stream(&steady_stream).await?;
    println!("at 1,000 appends/s:");
    show("  append -> published", published);
    let applied = applied.lock().map_err(|e| e.to_string())?.clone();
    show("  append -> applied", applied);
    Ok(())
}
