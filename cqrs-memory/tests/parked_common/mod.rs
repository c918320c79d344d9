//! What the parking tests share: a handler that cannot digest one amount until cured, and
//! a subscription that parks what it cannot digest.

// Each test file uses the part it needs; the rest would warn as unused there.
#![allow(dead_code)]

use async_trait::async_trait;
use cqrs_core::testing::toy::{Tally, TallyCommand, TallyEvent};
use cqrs_core::{
    EventHandler, EventOf, HandlerConsumer, HandlerError, OnFailure, Repository, RetryPolicy,
    Subscription,
};
use cqrs_memory::MemoryStore;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The amount no consumer here digests until it is cured.
pub const POISON: i64 = 13;

/// Records the amounts it handled; fails on [`POISON`] until `cured`.
#[derive(Clone, Default)]
pub struct Adder {
    seen: Arc<Mutex<Vec<i64>>>,
    pub cured: Arc<AtomicBool>,
}

impl Adder {
    pub fn seen(&self) -> Vec<i64> {
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

pub fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
    }
}

/// Adds each amount to tally `id`, one event each (positions 1, 2, ... on a new store).
pub async fn add(store: &MemoryStore, id: &str, amounts: &[i64]) {
    let tallies = Repository::<Tally, _>::new(store.clone());
    for n in amounts {
        tallies.execute(id, TallyCommand::Add(*n)).await.unwrap();
    }
}

pub fn parking(store: &MemoryStore, adder: &Adder) -> Subscription<MemoryStore> {
    Subscription::new(
        "adding",
        store.clone(),
        HandlerConsumer::new(adder.clone(), store.clone()),
    )
    .with_retry(quick_retry(2))
    .on_failure(OnFailure::Park)
}
