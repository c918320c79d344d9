//! [`ProjectionConsumer`]: a projection (of one aggregate or of several) fed by a subscription, each page committed
//! together with the subscription's checkpoint.

use crate::projection::{AnyProjection, MultiProjection};
use crate::store::SqliteStore;
use async_trait::async_trait;
use cqrs_core::{
    CheckpointStore, Consumer, EventFilter, HandlerError, ParkingStore, RecordedEvent, StoreError,
};
use std::sync::Arc;

impl SqliteStore {
    /// A [`Consumer`] for a [`Subscription`](cqrs_core::Subscription) that applies
    /// `projection` and stores the subscription's checkpoint in the same transaction, so
    /// a crash can neither lose an event nor apply one twice. Creates its tables first.
    pub async fn projection_consumer(
        &self,
        projection: impl MultiProjection,
    ) -> Result<ProjectionConsumer, StoreError> {
        Ok(ProjectionConsumer {
            store: self.clone(),
            projection: self.set_up(projection).await?,
        })
    }
}

/// Feeds a [`Projection`](crate::Projection) or a [`MultiProjection`] from a subscription, committing each event's changes with the
/// checkpoint (see [`SqliteStore::projection_consumer`]).
pub struct ProjectionConsumer {
    store: SqliteStore,
    projection: Arc<dyn AnyProjection>,
}

#[async_trait]
impl Consumer for ProjectionConsumer {
    /// The events of the projection's aggregate types: a subscription reads nothing else.
    fn filter(&self) -> EventFilter {
        self.projection.filter()
    }

    async fn checkpoint(&self, subscription: &str) -> Result<u64, HandlerError> {
        Ok(self.store.load_checkpoint(subscription).await?)
    }

    async fn consume(&self, subscription: &str, event: &RecordedEvent) -> Result<(), HandlerError> {
        self.consume_page(subscription, std::slice::from_ref(event))
            .await
    }

    /// The whole page and its checkpoint in one transaction: all of it or none of it.
    async fn consume_page(
        &self,
        subscription: &str,
        events: &[RecordedEvent],
    ) -> Result<(), HandlerError> {
        let projection = Arc::clone(&self.projection);
        self.store
            .project_page(projection, subscription.to_owned(), events.to_vec())
            .await?;
        Ok(())
    }

    async fn reset(&self, subscription: &str) -> Result<(), HandlerError> {
        let projection = Arc::clone(&self.projection);
        self.store
            .reset_projection(projection, subscription.to_owned())
            .await?;
        Ok(())
    }

    async fn pass(&self, subscription: &str, event: &RecordedEvent) -> Result<(), HandlerError> {
        Ok(self
            .store
            .save_checkpoint(subscription, event.position)
            .await?)
    }

    /// Applies the event and removes it from the parked events of this consumer's store
    /// (the subscription's, when it parks there), in one transaction: exactly once. An
    /// event no longer parked is not applied. `parking` is not used.
    async fn consume_parked(
        &self,
        subscription: &str,
        event: &RecordedEvent,
        parking: &dyn ParkingStore,
    ) -> Result<(), HandlerError> {
        let _ = parking;
        let projection = Arc::clone(&self.projection);
        self.store
            .project_parked(projection, subscription.to_owned(), event.clone())
            .await?;
        Ok(())
    }
}
