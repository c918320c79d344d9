//! Parked events: an event that kept failing a subscription, set aside so that the
//! subscription goes on past it, and kept in the store until someone retries or discards it.
//!
//! A subscription stops at an event that keeps failing (the default: an event is never
//! skipped without a trace). With [`OnFailure::Park`]
//! it parks it instead: the event's place, id and last error are recorded in a
//! [`ParkingStore`] (the subscription's own store), a warning is logged, and the
//! subscription's checkpoint moves past it. The parked list is then read, retried and
//! discarded through [`Subscription`](crate::subscription::Subscription).
//!
//! Every backend that implements it passes `cqrs_core::parking_store_conformance_tests!`
//! (the testing kit, feature `testing`).

use crate::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

/// What a subscription does with an event that still fails once its
/// [`RetryPolicy`](crate::subscription::RetryPolicy) is spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnFailure {
    /// Stops before it and reports it: later events wait until it is handled (the
    /// default).
    #[default]
    Stop,
    /// Parks it in the subscription's store, logs a warning, and goes on past it.
    Park,
}

/// One event a subscription parked, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEvent {
    /// The subscription that parked it.
    pub subscription: String,
    /// The event's place in the global log: with the subscription, the key of the entry.
    pub position: u64,
    /// The event's id, to read it back.
    pub event_id: Uuid,
    /// The event's stream.
    pub stream_id: String,
    /// Its version in that stream.
    pub version: u64,
    /// Its type.
    pub event_type: String,
    /// The last error it failed with.
    pub error: String,
    /// How many times it was tried in all (a retry that failed adds its own).
    pub attempts: u32,
    /// When it was first parked (microsecond precision).
    pub parked_at: DateTime<Utc>,
}

/// Where subscriptions keep the events they parked: one entry per subscription and
/// position.
#[async_trait]
pub trait ParkingStore: Send + Sync + 'static {
    /// Records `parked`, replacing the entry of the same subscription and position if there
    /// is one (parking again after a crash, or a failed retry, changes nothing else).
    async fn park(&self, parked: ParkedEvent) -> Result<(), StoreError>;
    /// The events `subscription` parked, in position order.
    async fn parked(&self, subscription: &str) -> Result<Vec<ParkedEvent>, StoreError>;
    /// Removes the entry of `subscription` at `position`; returns whether there was one.
    async fn unpark(&self, subscription: &str, position: u64) -> Result<bool, StoreError>;
}

#[async_trait]
impl<P: ParkingStore + ?Sized> ParkingStore for Arc<P> {
    async fn park(&self, parked: ParkedEvent) -> Result<(), StoreError> {
        (**self).park(parked).await
    }

    async fn parked(&self, subscription: &str) -> Result<Vec<ParkedEvent>, StoreError> {
        (**self).parked(subscription).await
    }

    async fn unpark(&self, subscription: &str, position: u64) -> Result<bool, StoreError> {
        (**self).unpark(subscription, position).await
    }
}

/// The refusal of removing an entry that is not there: nothing is parked for
/// `subscription` at `position` (it was retried or discarded already, or never parked).
pub fn not_parked(subscription: &str, position: u64) -> StoreError {
    StoreError::NotParked {
        subscription: subscription.to_owned(),
        position,
    }
}
