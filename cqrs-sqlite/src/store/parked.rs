//! The parked events of subscriptions (`cqrs_core::parking`) in the store's file, table
//! `parked`; and a retried reaction committed with its entry's removal, in one writer job.

use super::{append_each, SqliteStore};
use crate::panics::lock;
use crate::projection::AnyProjection;
use crate::sql::parked;
use async_trait::async_trait;
use cqrs_core::backend::validate_stream_id;
use cqrs_core::parking::not_parked;
use cqrs_core::tracking::{check_untracked, AppendBatch};
use cqrs_core::{Appended, ParkedEvent, ParkingStore, RecordedEvent, StoreError};
use std::sync::Arc;

#[async_trait]
impl ParkingStore for SqliteStore {
    async fn park(&self, parked: ParkedEvent) -> Result<(), StoreError> {
        self.writer
            .run(move |conn| parked::park(conn, &parked))
            .await
    }

    async fn parked(&self, subscription: &str) -> Result<Vec<ParkedEvent>, StoreError> {
        let subscription = subscription.to_owned();
        self.readers
            .run(move |conn| parked::list(conn, &subscription))
            .await
    }

    async fn unpark(&self, subscription: &str, position: u64) -> Result<bool, StoreError> {
        let subscription = subscription.to_owned();
        self.writer
            .run(move |conn| parked::remove(conn, &subscription, position))
            .await
    }
}

impl SqliteStore {
    /// `TrackingStore::append_batch_unparking`: one writer job removes the entry (refused,
    /// [`StoreError::NotParked`], if it is gone) and makes the appends, so a refusal of
    /// either rolls both back.
    pub(super) async fn unparking(
        &self,
        batch: AppendBatch,
        subscription: &str,
        position: u64,
    ) -> Result<Vec<Appended>, StoreError> {
        check_untracked(&batch)?;
        for append in &batch.appends {
            validate_stream_id(&append.stream_id)?;
        }
        let projections = Arc::clone(&lock(&self.inline));
        let subscription = subscription.to_owned();
        let outcomes = self
            .writer
            .run(move |conn| {
                if !parked::remove(conn, &subscription, position)? {
                    return Err(not_parked(&subscription, position));
                }
                append_each(conn, &projections, batch.appends)
            })
            .await?;
        self.announce_batch(&outcomes);
        Ok(outcomes)
    }

    /// Applies `event` to `projection` and removes it from `subscription`'s parked events,
    /// in one transaction; changes nothing if it is no longer parked.
    pub(crate) async fn project_parked(
        &self,
        projection: Arc<dyn AnyProjection>,
        subscription: String,
        event: RecordedEvent,
    ) -> Result<(), StoreError> {
        self.writer
            .run(move |conn| {
                if parked::remove(conn, &subscription, event.position)? {
                    projection.project(conn, &event)?;
                }
                Ok(())
            })
            .await
    }
}
