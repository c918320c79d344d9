//! [`ProjectionConsumer`]: a projection (of one aggregate or of several) fed by a
//! subscription, each page committed together with the subscription's checkpoint.

use crate::error::store_error;
use crate::projection::{AnyProjection, MultiProjection};
use crate::sql::append::run_projections;
use crate::sql::{locks, state};
use crate::store::PostgresStore;
use async_trait::async_trait;
use cqrs_core::{CheckpointStore, Consumer, EventFilter, HandlerError, RecordedEvent, StoreError};
use std::sync::Arc;

impl PostgresStore {
    /// A [`Consumer`] for a [`Subscription`](cqrs_core::Subscription) that applies
    /// `projection` and stores the subscription's checkpoint in the same transaction, so
    /// a crash can neither lose an event nor apply one twice. Creates its tables first.
    ///
    /// Each page's transaction holds the subscription's lock and skips the events at or
    /// before the stored checkpoint, so two processes feeding the same subscription apply
    /// each event once between them.
    pub async fn projection_consumer(
        &self,
        projection: impl MultiProjection,
    ) -> Result<ProjectionConsumer, StoreError> {
        Ok(ProjectionConsumer {
            store: self.clone(),
            projection: self.set_up(projection).await?,
        })
    }

    /// Runs `work` in a transaction under `subscription`'s lock, as a task of its own: a
    /// caller that stops waiting does not leave the pooled connection mid-transaction.
    async fn in_subscription_transaction(
        &self,
        projection: Arc<dyn AnyProjection>,
        subscription: &str,
        work: Work,
    ) -> Result<(), StoreError> {
        let store = self.clone();
        let subscription = subscription.to_owned();
        let task = tokio::spawn(async move {
            let client = store.client().await?;
            client.batch_execute("BEGIN").await.map_err(store_error)?;
            let key = locks::subscription_key(store.schema(), &subscription);
            let sql = store.state_sql();
            let done = async {
                client
                    .execute("SELECT pg_advisory_xact_lock($1)", &[&key])
                    .await
                    .map_err(store_error)?;
                match work {
                    Work::Page(events) => {
                        let Some(last) = events.last().map(|event| event.position) else {
                            return Ok(());
                        };
                        let stored = state::load_checkpoint(&client, sql, &subscription).await?;
                        // Events another process applied already (it holds the same lock).
                        let fresh = events.iter().filter(|event| event.position > stored);
                        run_projections(&client, &[projection], fresh).await?;
                        if last > stored {
                            state::save_checkpoint(&client, sql, &subscription, last).await?;
                        }
                        Ok(())
                    }
                    Work::Reset => {
                        projection.reset(&client).await?;
                        state::save_checkpoint(&client, sql, &subscription, 0).await
                    }
                }
            }
            .await;
            let end = if done.is_ok() { "COMMIT" } else { "ROLLBACK" };
            let ended = client.batch_execute(end).await.map_err(store_error);
            done.and(ended)
        });
        task.await
            .map_err(|error| StoreError::Backend(format!("a projection's page: {error}").into()))?
    }
}

/// What a projection consumer's transaction does.
enum Work {
    /// Applies the events past the stored checkpoint and moves it to the last one.
    Page(Vec<RecordedEvent>),
    /// Empties the read model and moves the checkpoint back to the start.
    Reset,
}

/// Feeds a [`Projection`](crate::Projection) or a [`MultiProjection`] from a subscription,
/// committing each page's changes with the checkpoint (see
/// [`PostgresStore::projection_consumer`]).
pub struct ProjectionConsumer {
    store: PostgresStore,
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

    /// The whole page and its checkpoint in one transaction, under the subscription's lock,
    /// skipping the events at or before the stored checkpoint: all of it or none of it.
    async fn consume_page(
        &self,
        subscription: &str,
        events: &[RecordedEvent],
    ) -> Result<(), HandlerError> {
        let page = Work::Page(events.to_vec());
        self.store
            .in_subscription_transaction(Arc::clone(&self.projection), subscription, page)
            .await?;
        Ok(())
    }

    /// Empties the read model and moves the checkpoint back to the start, in one
    /// transaction under the subscription's lock.
    async fn reset(&self, subscription: &str) -> Result<(), HandlerError> {
        self.store
            .in_subscription_transaction(Arc::clone(&self.projection), subscription, Work::Reset)
            .await?;
        Ok(())
    }
}
