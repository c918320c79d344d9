//! Parked events on MemoryStore: a subscription with `OnFailure::Park` sets aside an event
//! that keeps failing, says so at warn level and goes on; the event is listed with its
//! error, retried out of band (once, without moving the checkpoint) or discarded.

use async_trait::async_trait;
use cqrs_core::testing::toy::{Tally, TallyCommand, TallyEvent};
use cqrs_core::{
    CheckpointStore, Consumer, EventEnvelope, EventHandler, EventOf, EventStore, HandlerConsumer,
    HandlerError, OnFailure, ParkedEvent, ParkingStore, Reaction, Reactor, ReactorConsumer,
    RecordedEvent, Repository, RetryPolicy, Sources, Subscription, SubscriptionError,
};
use cqrs_memory::MemoryStore;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The amount no consumer here digests until it is cured.
const POISON: i64 = 13;

/// Records the amounts it handled; fails on [`POISON`] until `cured`.
#[derive(Clone, Default)]
struct Adder {
    seen: Arc<Mutex<Vec<i64>>>,
    cured: Arc<AtomicBool>,
}

impl Adder {
    fn seen(&self) -> Vec<i64> {
        self.seen.lock().unwrap().clone()
    }

    fn digest(&self, n: i64) -> Result<(), HandlerError> {
        if n == POISON && !self.cured.load(Ordering::SeqCst) {
            return Err(format!("cannot digest {n}").into());
        }
        self.seen.lock().unwrap().push(n);
        Ok(())
    }
}

#[async_trait]
impl EventHandler for Adder {
    type Aggregate = Tally;
    fn name(&self) -> &str {
        "adder"
    }
    async fn handle(&self, event: &EventOf<Self>) -> Result<(), HandlerError> {
        let TallyEvent::Added { n } = event.event;
        self.digest(n)
    }
}

fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    }
}

/// Adds each amount to tally `id`, one event each (positions 1, 2, ... on a new store).
async fn add(store: &MemoryStore, id: &str, amounts: &[i64]) {
    let tallies = Repository::<Tally, _>::new(store.clone());
    for n in amounts {
        tallies.execute(id, TallyCommand::Add(*n)).await.unwrap();
    }
}

fn parking(store: &MemoryStore, adder: &Adder) -> Subscription<MemoryStore> {
    Subscription::new(
        "adding",
        store.clone(),
        HandlerConsumer::new(adder.clone(), store.clone()),
    )
    .with_retry(quick_retry(2))
    .on_failure(OnFailure::Park)
}

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

// The test runtime runs on this thread only, so the subscriber set here sees the
// subscription's events.
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
    let _guard = tracing::subscriber::set_default(subscriber);
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

#[tokio::test]
async fn a_running_subscription_parks_and_goes_on_to_later_events() {
    let store = MemoryStore::new();
    let adder = Adder::default();
    let mut running = parking(&store, &adder).start();
    add(&store, "t", &[POISON, 5]).await;
    running.wait_for(2).await.unwrap();
    assert_eq!(adder.seen(), [5]);
    assert_eq!(store.parked("adding").await.unwrap()[0].position, 1);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_retry_after_the_fix_delivers_the_parked_event_once_and_removes_it() {
    let store = MemoryStore::new();
    add(&store, "t", &[1, POISON, 2]).await;
    let adder = Adder::default();
    let subscription = parking(&store, &adder);
    subscription.catch_up().await.unwrap();

    // Still broken: it stays parked, its error and attempts brought up to date.
    let error = subscription.retry_parked(2).await.unwrap_err();
    assert!(
        matches!(
            &error,
            SubscriptionError::RetryFailed { subscription, position: 2, attempts: 2, .. }
                if subscription == "adding"
        ),
        "{error:?}"
    );
    let parked = subscription.parked().await.unwrap();
    assert_eq!((parked[0].attempts, parked.len()), (4, 1));

    adder.cured.store(true, Ordering::SeqCst);
    subscription.retry_parked(2).await.unwrap();
    assert_eq!(
        adder.seen(),
        [1, 2, POISON],
        "delivered once, after the fix"
    );
    assert!(subscription.parked().await.unwrap().is_empty());
    assert_eq!(
        store.load_checkpoint("adding").await.unwrap(),
        3,
        "the retry moved the checkpoint"
    );
    let again = subscription.retry_parked(2).await.unwrap_err();
    assert!(
        matches!(again, SubscriptionError::NotParked { position: 2, .. }),
        "{again:?}"
    );
    subscription.catch_up().await.unwrap();
    assert_eq!(
        adder.seen(),
        [1, 2, POISON],
        "delivered again by the subscription"
    );
}

#[tokio::test]
async fn discarding_removes_a_parked_event_without_delivering_it() {
    let store = MemoryStore::new();
    add(&store, "t", &[POISON, 2]).await;
    let adder = Adder::default();
    let subscription = parking(&store, &adder);
    subscription.catch_up().await.unwrap();
    adder.cured.store(true, Ordering::SeqCst);

    let discarded = subscription.discard_parked(1).await.unwrap();
    assert_eq!((discarded.position, discarded.version), (1, 1));
    assert!(subscription.parked().await.unwrap().is_empty());
    assert!(matches!(
        subscription.discard_parked(1).await,
        Err(SubscriptionError::NotParked { position: 1, .. })
    ));
    assert!(matches!(
        subscription.retry_parked(1).await,
        Err(SubscriptionError::NotParked { position: 1, .. })
    ));
    subscription.catch_up().await.unwrap();
    assert_eq!(adder.seen(), [2], "a discarded event was delivered");
}

#[tokio::test]
async fn an_entry_after_the_checkpoint_is_forgotten_at_start_and_its_event_delivered_again() {
    // A crash after parking and before the checkpoint moved leaves such an entry.
    let store = MemoryStore::new();
    add(&store, "t", &[1, 2]).await;
    let second = store.read_stream("Tally-t", 2, 1).await.unwrap().remove(0);
    store.park(entry_for("adding", &second)).await.unwrap();
    store.save_checkpoint("adding", 1).await.unwrap();
    let adder = Adder::default();
    let subscription = parking(&store, &adder);
    assert!(matches!(
        subscription.retry_parked(2).await,
        Err(SubscriptionError::ParkedAhead {
            position: 2,
            checkpoint: 1,
            ..
        })
    ));

    assert_eq!(subscription.catch_up().await.unwrap(), 2);
    assert_eq!(adder.seen(), [2]);
    assert!(store.parked("adding").await.unwrap().is_empty());
}

fn entry_for(subscription: &str, event: &RecordedEvent) -> ParkedEvent {
    ParkedEvent {
        subscription: subscription.to_owned(),
        position: event.position,
        event_id: event.event_id,
        stream_id: event.stream_id.clone(),
        version: event.version,
        event_type: event.event_type.clone(),
        error: "boom".to_owned(),
        attempts: 1,
        parked_at: cqrs_core::backend::recorded_now(),
    }
}

/// A consumer that keeps its own checkpoint and says nothing of parking.
#[derive(Clone, Default)]
struct Unparkable {
    checkpoint: Arc<Mutex<u64>>,
}

#[async_trait]
impl Consumer for Unparkable {
    async fn checkpoint(&self, _: &str) -> Result<u64, HandlerError> {
        Ok(*self.checkpoint.lock().unwrap())
    }
    async fn consume(&self, _: &str, event: &RecordedEvent) -> Result<(), HandlerError> {
        if event.version == 2 {
            return Err("poison".into());
        }
        *self.checkpoint.lock().unwrap() = event.position;
        Ok(())
    }
    async fn reset(&self, _: &str) -> Result<(), HandlerError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_consumer_that_cannot_park_stops_before_the_event_and_leaves_nothing_parked() {
    let store = MemoryStore::new();
    add(&store, "t", &[1, 2, 3]).await;
    let consumer = Unparkable::default();
    let subscription = Subscription::new("own", store.clone(), consumer.clone())
        .with_retry(quick_retry(1))
        .on_failure(OnFailure::Park);
    let error = subscription.catch_up().await.unwrap_err();
    assert!(error.to_string().contains("cannot park"), "{error}");
    assert_eq!(*consumer.checkpoint.lock().unwrap(), 1);
    assert!(store.parked("own").await.unwrap().is_empty());
}

/// Mirrors every amount added to a tally onto tally "mirror"; fails on [`POISON`] until
/// `cured`.
struct Mirror {
    tallies: Repository<Tally, MemoryStore>,
    cured: Arc<AtomicBool>,
}

#[async_trait]
impl Reactor for Mirror {
    type Event = TallyEvent;
    fn name(&self) -> &str {
        "mirror"
    }
    fn sources(&self) -> Sources<TallyEvent> {
        Sources::of::<Tally>()
    }
    async fn react(
        &self,
        event: &EventEnvelope<TallyEvent>,
        reaction: &mut Reaction,
    ) -> Result<(), HandlerError> {
        let TallyEvent::Added { n } = event.event;
        if event.stream_id == "Tally-mirror" {
            return Ok(());
        }
        if n == POISON && !self.cured.load(Ordering::SeqCst) {
            return Err(format!("cannot mirror {n}").into());
        }
        reaction
            .execute(&self.tallies, "mirror", TallyCommand::Add(n))
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_retried_reaction_commits_its_commands_with_the_unparking_exactly_once() {
    let store = MemoryStore::new();
    add(&store, "t", &[1, POISON]).await;
    let cured = Arc::new(AtomicBool::new(false));
    let reactor = || Mirror {
        tallies: Repository::new(store.clone()),
        cured: Arc::clone(&cured),
    };
    let subscription = Subscription::new(
        "mirroring",
        store.clone(),
        ReactorConsumer::new(reactor(), store.clone()),
    )
    .with_retry(quick_retry(1))
    .on_failure(OnFailure::Park);
    subscription.catch_up().await.unwrap();
    let mirror = Repository::<Tally, _>::new(store.clone());
    assert_eq!(mirror.load("mirror").await.unwrap().state.total, 1);
    assert_eq!(store.parked("mirroring").await.unwrap()[0].position, 2);
    let checkpoint = store.load_checkpoint("mirroring").await.unwrap();
    assert!(
        checkpoint >= 2,
        "the checkpoint did not move past the parked event"
    );

    cured.store(true, Ordering::SeqCst);
    subscription.retry_parked(2).await.unwrap();
    // Another process retrying it too finds it gone (the store's batches refuse a race).
    let other = Subscription::new(
        "mirroring",
        store.clone(),
        ReactorConsumer::new(reactor(), store.clone()),
    );
    assert!(matches!(
        other.retry_parked(2).await,
        Err(SubscriptionError::NotParked { position: 2, .. })
    ));
    assert_eq!(
        mirror.load("mirror").await.unwrap().state.total,
        1 + POISON,
        "mirrored once"
    );
    assert!(store.parked("mirroring").await.unwrap().is_empty());
    assert_eq!(
        store.load_checkpoint("mirroring").await.unwrap(),
        checkpoint
    );
}
