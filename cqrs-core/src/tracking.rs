//! Appends to several streams together with a subscription's checkpoint, in one transaction:
//! what makes a reaction's commands exactly once.
//!
//! A subscription delivers at least once: its checkpoint moves after the event was handled,
//! so a crash in between delivers the event again. When handling an event means issuing
//! commands (a process manager), delivering it twice would run them twice. A
//! [`TrackingStore`] closes that gap: the events the commands produce and the position of
//! the event they react to commit together, or not at all. After a crash either both are
//! stored (the event is not delivered again) or neither is (it is, and its commands run for
//! the first time). A batch whose checkpoint is not past the stored one is refused whole
//! ([`StoreError::CheckpointPassed`]), so two processes running the same subscription
//! cannot both commit a reaction to the same event either.
//!
//! Every backend that implements it passes `cqrs_core::tracking_store_conformance_tests!`
//! (the testing kit, feature `testing`).

use crate::envelope::NewEvent;
use crate::store::{Appended, EventStore, ExpectedVersion, StoreError};
use crate::subscription::CheckpointStore;
use async_trait::async_trait;
use std::sync::Arc;

/// One stream's part of a batch: like the arguments of [`EventStore::append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAppend {
    /// The stream appended to.
    pub stream_id: String,
    /// The condition it is appended under.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<NewEvent>,
}

/// The checkpoint a batch records: the subscription's position after the reaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    /// The subscription's name.
    pub subscription: String,
    /// The position of the event reacted to; must be past the stored checkpoint.
    pub position: u64,
}

/// Appends to one or more streams and, optionally, a subscription's new checkpoint: all of
/// it commits, or none of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendBatch {
    /// The appends, made in this order (a later one to the same stream sees the earlier).
    pub appends: Vec<StreamAppend>,
    /// The checkpoint recorded with them.
    pub tracking: Option<Tracking>,
}

impl AppendBatch {
    /// An empty batch: no append, no checkpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an append of `events` to `stream_id` under `expected`.
    pub fn append(
        mut self,
        stream_id: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        self.appends.push(StreamAppend {
            stream_id: stream_id.into(),
            expected,
            events,
        });
        self
    }

    /// Records `position` as `subscription`'s checkpoint with the appends, if the stored
    /// checkpoint is before it.
    pub fn tracking(mut self, subscription: impl Into<String>, position: u64) -> Self {
        self.tracking = Some(Tracking {
            subscription: subscription.into(),
            position,
        });
        self
    }
}

/// A store that commits appends to several streams and a subscription's checkpoint in one
/// transaction (see the [module](self)).
#[async_trait]
pub trait TrackingStore: EventStore + CheckpointStore {
    /// Commits the whole batch or nothing of it, and returns each append's outcome in order.
    ///
    /// Checks, in order: the tracking checkpoint, which must be past the stored one (else
    /// [`StoreError::CheckpointPassed`]; a position of 0 is
    /// [`StoreError::InvalidArgument`]); then each append as
    /// [`EventStore::append`] checks it, against the stream as the earlier appends of the
    /// batch left it. Any refusal leaves the store as it was. Every appended event signals
    /// [`EventStore::appends`] like an append does.
    async fn append_batch(&self, batch: AppendBatch) -> Result<Vec<Appended>, StoreError>;

    /// Commits `batch` and removes the event `subscription` parked at `position` from the
    /// parked list (see [`ParkingStore`](crate::parking::ParkingStore)), in one
    /// transaction: what a retried reaction to a parked event commits, so that it is
    /// committed once, however many retries race.
    ///
    /// Checks, in order: the batch carries no tracking checkpoint (a retry never moves it:
    /// [`StoreError::InvalidArgument`]); the event is parked (else
    /// [`StoreError::NotParked`]); then each append as [`append_batch`](Self::append_batch)
    /// does. Any refusal leaves the store as it was, the event parked.
    ///
    /// The default refuses every batch ([`StoreError::Backend`]): a store that keeps no
    /// parked events, or cannot remove one in the transaction of its appends, must not
    /// pretend to (a reaction committed without its unparking could be retried again).
    async fn append_batch_unparking(
        &self,
        batch: AppendBatch,
        subscription: &str,
        position: u64,
    ) -> Result<Vec<Appended>, StoreError> {
        drop(batch);
        Err(StoreError::Backend(
            format!(
                "this store cannot commit a batch with the unparking of the event \
                 subscription `{subscription}` parked at position {position}"
            )
            .into(),
        ))
    }
}

#[async_trait]
impl<S: TrackingStore + ?Sized> TrackingStore for Arc<S> {
    async fn append_batch(&self, batch: AppendBatch) -> Result<Vec<Appended>, StoreError> {
        (**self).append_batch(batch).await
    }

    async fn append_batch_unparking(
        &self,
        batch: AppendBatch,
        subscription: &str,
        position: u64,
    ) -> Result<Vec<Appended>, StoreError> {
        (**self)
            .append_batch_unparking(batch, subscription, position)
            .await
    }
}

/// Refuses a batch that would retry a parked event with a tracking checkpoint (a retry
/// never moves the checkpoint, which is past the event already): backends call it first
/// in [`TrackingStore::append_batch_unparking`].
pub fn check_untracked(batch: &AppendBatch) -> Result<(), StoreError> {
    match &batch.tracking {
        Some(tracking) => Err(StoreError::InvalidArgument {
            argument: "batch",
            reason: format!(
                "a batch retrying a parked event carries the checkpoint {} of subscription \
                 `{}`: a retry never moves the checkpoint",
                tracking.position, tracking.subscription
            ),
        }),
        None => Ok(()),
    }
}

/// Refuses a tracking checkpoint of 0, which no event has: backends call it first.
pub fn check_tracking(tracking: Option<&Tracking>) -> Result<(), StoreError> {
    match tracking {
        Some(tracking) if tracking.position == 0 => Err(StoreError::InvalidArgument {
            argument: "batch",
            reason: format!(
                "the checkpoint of subscription `{}` is 0: no event has that position",
                tracking.subscription
            ),
        }),
        _ => Ok(()),
    }
}

/// The refusal of a batch whose checkpoint is not past `stored`, if it is not.
pub fn check_passed(tracking: &Tracking, stored: u64) -> Result<(), StoreError> {
    if stored >= tracking.position {
        return Err(StoreError::CheckpointPassed {
            subscription: tracking.subscription.clone(),
            position: tracking.position,
            checkpoint: stored,
        });
    }
    Ok(())
}
