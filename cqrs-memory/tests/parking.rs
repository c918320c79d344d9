//! Parked events on MemoryStore: a subscription with `OnFailure::Park` sets aside an event
//! that keeps failing and goes on; the event is listed with its error, retried out of band
//! (once, without moving the checkpoint) or discarded. (The warning it logs is checked in
//! `parking_warning.rs`, a binary of its own.)

use async_trait::async_trait;
use cqrs_core::testing::toy::{Tally, TallyCommand, TallyEvent};
use cqrs_core::{
    CheckpointStore, Consumer, EventEnvelope, EventStore, HandlerError, OnFailure, ParkedEvent,
    ParkingStore, Reaction, Reactor, ReactorConsumer, RecordedEvent, Repository, Sources,
    Subscription, SubscriptionError,
};
use cqrs_memory::MemoryStore;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

mod parked_common;

use parked_common::{add, parking, quick_retry, Adder, POISON};

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
