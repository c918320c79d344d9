//! A subscription's parked events: parking one that keeps failing, and the API that lists,
//! retries and discards them (see [`crate::parking`]).

use super::{Subscription, SubscriptionError};
use crate::backend::recorded_now;
use crate::envelope::RecordedEvent;
use crate::handler::HandlerError;
use crate::parking::{OnFailure, ParkedEvent, ParkingStore};
use crate::store::{EventStore, StoreError};
use std::sync::Arc;

impl<S: EventStore + Clone> Subscription<S> {
    /// Records `event` in `parking` with its last error, then moves the checkpoint past it,
    /// and says so at warn level. If the checkpoint cannot move, the entry is taken back
    /// (when it can be) and the subscription stops.
    pub(super) async fn park(
        &self,
        parking: &dyn ParkingStore,
        event: &RecordedEvent,
        source: HandlerError,
        attempts: u32,
    ) -> Result<(), SubscriptionError> {
        let parked = ParkedEvent {
            subscription: self.name.to_string(),
            position: event.position,
            event_id: event.event_id,
            stream_id: event.stream_id.clone(),
            version: event.version,
            event_type: event.event_type.clone(),
            error: source.to_string(),
            attempts,
            parked_at: recorded_now(),
        };
        self.retry
            .run(self.stopped.as_ref(), || async {
                Ok(parking.park(parked.clone()).await?)
            })
            .await
            .map_err(|(source, attempts)| self.unavailable("park an event", source, attempts))?;
        let passed = self
            .retry
            .run(self.stopped.as_ref(), || {
                self.consumer.pass(&self.name, event)
            })
            .await;
        if let Err((source, attempts)) = passed {
            // Were it left, the entry would name an event the checkpoint is not past; the
            // next start forgets it anyway.
            if let Err(error) = parking.unpark(&self.name, event.position).await {
                tracing::debug!(%error, "could not take back the entry; the next start will");
            }
            return Err(self.unavailable(
                "move its checkpoint past a parked event",
                source,
                attempts,
            ));
        }
        tracing::warn!(
            subscription = %self.name,
            position = event.position,
            event_id = %event.event_id,
            stream = %event.stream_id,
            version = event.version,
            attempts,
            error = %parked.error,
            "event parked after failing; the subscription goes on"
        );
        Ok(())
    }

    /// Forgets the parked entries after `checkpoint`: a subscription stopped (or crashed)
    /// after parking them and before passing them, so it delivers them again. Run where
    /// the subscription starts, before it delivers anything.
    pub(super) async fn forget_parked_after(
        &self,
        checkpoint: u64,
    ) -> Result<(), SubscriptionError> {
        let Some(parking) = self.parking.as_deref() else {
            return Ok(());
        };
        let forget = || async {
            for parked in parking.parked(&self.name).await? {
                if parked.position > checkpoint {
                    tracing::info!(
                        position = parked.position,
                        checkpoint,
                        "parked event after the checkpoint: it will be delivered again"
                    );
                    parking.unpark(&self.name, parked.position).await?;
                }
            }
            Ok::<_, HandlerError>(())
        };
        self.retry
            .run(self.stopped.as_ref(), forget)
            .await
            .map_err(|(source, attempts)| {
                self.unavailable("read its parked events", source, attempts)
            })
    }
}

impl<S: EventStore + Clone + ParkingStore> Subscription<S> {
    /// What to do with an event that still fails once the retries are spent: stop before it
    /// ([`OnFailure::Stop`], the default) or park it in this subscription's store and go on
    /// ([`OnFailure::Park`]). The consumer must implement
    /// [`Consumer::pass`](super::Consumer::pass) and
    /// [`Consumer::consume_parked`](super::Consumer::consume_parked) (the framework's
    /// consumers do).
    pub fn on_failure(mut self, failure: OnFailure) -> Self {
        self.parking = match failure {
            OnFailure::Stop => None,
            OnFailure::Park => Some(Arc::new(self.store.clone())),
        };
        self
    }

    /// The events this subscription parked, in position order.
    pub async fn parked(&self) -> Result<Vec<ParkedEvent>, SubscriptionError> {
        self.retry
            .run(None, || async { Ok(self.store.parked(&self.name).await?) })
            .await
            .map_err(|(source, attempts)| {
                self.unavailable("read its parked events", source, attempts)
            })
    }

    /// Delivers the event parked at `position` to the consumer again, out of band (the
    /// checkpoint stays where it is), with the retry policy; once handled, it leaves the
    /// parked list. If it fails again it stays parked, its error and attempts updated, and
    /// [`SubscriptionError::RetryFailed`] says why. Safe while the subscription runs.
    pub async fn retry_parked(&self, position: u64) -> Result<(), SubscriptionError> {
        let parked = self.find_parked(position).await?;
        let checkpoint = self.checkpoint().await?;
        if checkpoint < position {
            return Err(SubscriptionError::ParkedAhead {
                subscription: self.name.to_string(),
                position,
                checkpoint,
            });
        }
        let failed = |source: HandlerError, attempts| SubscriptionError::RetryFailed {
            subscription: self.name.to_string(),
            position,
            attempts,
            source,
        };
        let event = self.parked_event(&parked).await.map_err(|e| failed(e, 1))?;
        let outcome = self
            .retry
            .run(None, || {
                self.consumer
                    .consume_parked(&self.name, &event, &self.store)
            })
            .await;
        let (source, attempts) = match outcome {
            Ok(()) => {
                tracing::info!(subscription = %self.name, position, "parked event retried");
                return Ok(());
            }
            Err(failure) => failure,
        };
        if matches!(
            source.downcast_ref::<StoreError>(),
            Some(StoreError::NotParked { .. })
        ) {
            return Err(self.not_parked(position));
        }
        let again = ParkedEvent {
            error: source.to_string(),
            attempts: parked.attempts.saturating_add(attempts),
            ..parked
        };
        // Only if it is still there: a retry racing this one may have handled it.
        if self.find_parked(position).await.is_ok() {
            if let Err(error) = self.store.park(again).await {
                tracing::warn!(%error, position, "could not record the retry's error");
            }
        }
        Err(failed(source, attempts))
    }

    /// Removes the event parked at `position` from the list without handling it, and
    /// returns its entry. The event stays in the log; the subscription never delivers it
    /// again.
    pub async fn discard_parked(&self, position: u64) -> Result<ParkedEvent, SubscriptionError> {
        let parked = self.find_parked(position).await?;
        let removed = self
            .retry
            .run(None, || async {
                Ok(self.store.unpark(&self.name, position).await?)
            })
            .await
            .map_err(|(source, attempts)| {
                self.unavailable("discard a parked event", source, attempts)
            })?;
        if !removed {
            return Err(self.not_parked(position));
        }
        tracing::info!(
            subscription = %self.name,
            position,
            event_id = %parked.event_id,
            "parked event discarded"
        );
        Ok(parked)
    }

    async fn find_parked(&self, position: u64) -> Result<ParkedEvent, SubscriptionError> {
        self.parked()
            .await?
            .into_iter()
            .find(|parked| parked.position == position)
            .ok_or_else(|| self.not_parked(position))
    }

    /// The event `parked` names, read back from the log by its id: an entry whose event is
    /// gone, or sits at another position, is [`StoreError::Corrupt`].
    async fn parked_event(&self, parked: &ParkedEvent) -> Result<RecordedEvent, HandlerError> {
        let found = self.store.read_events_by_id(&[parked.event_id]).await?;
        match found.into_iter().next() {
            Some(event) if event.position == parked.position => Ok(event),
            other => Err(StoreError::Corrupt {
                stream_id: parked.stream_id.clone(),
                version: parked.version,
                position: Some(parked.position),
                reason: format!(
                    "subscription `{}` parked event {} here, but the log {}",
                    parked.subscription,
                    parked.event_id,
                    match other {
                        Some(event) => format!("has it at position {}", event.position),
                        None => "does not hold it".to_owned(),
                    }
                ),
            }
            .into()),
        }
    }

    fn not_parked(&self, position: u64) -> SubscriptionError {
        SubscriptionError::NotParked {
            subscription: self.name.to_string(),
            position,
        }
    }
}
