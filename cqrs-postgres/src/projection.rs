//! Read models in the store's own PostgreSQL database: the [`Projection`] (of one aggregate)
//! and [`MultiProjection`] (of several) users write, and the type-erased form the store runs
//! inside its transactions (inline, in the append's; or fed by a subscription, in one that
//! also commits the checkpoint).

use async_trait::async_trait;
use cqrs_core::{
    Aggregate, EventEnvelope, EventFilter, HandlerError, RecordedEvent, Sources, StoreError,
    Upcasters,
};
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio_postgres::Client;

/// The decoded events of a projection's aggregate.
pub type ProjectedEvent<P> = EventEnvelope<<<P as Projection>::Aggregate as Aggregate>::Event>;

/// A read model kept in tables of the event store's own database (in any schema).
///
/// Register it inline with [`PostgresStore::add_projection`](crate::PostgresStore::add_projection)
/// (the read model is never behind its events, and a failing projection fails the append),
/// or feed it from a [`Subscription`](cqrs_core::Subscription) through
/// [`PostgresStore::projection_consumer`](crate::PostgresStore::projection_consumer)
/// (eventually consistent, the checkpoint committed with the read model). Every method gets
/// the client inside the running transaction: write with it, and neither commit nor roll
/// back. Use only that client: the store's own appends, called from a projection, would
/// wait for the transaction the projection is running in.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// The aggregate whose events this projection reads; other streams are skipped.
    type Aggregate: Aggregate;

    /// Names the projection in errors and traces.
    fn name(&self) -> &str;

    /// Creates the read model's tables if they are missing (run when it is registered).
    async fn setup(&self, client: &Client) -> Result<(), HandlerError>;

    /// Applies one event to the read model; an error rolls back what the append (inline)
    /// or the page (fed by a subscription) did.
    async fn apply(
        &self,
        client: &Client,
        event: &ProjectedEvent<Self>,
    ) -> Result<(), HandlerError>;

    /// Empties the read model, before it is rebuilt from the whole log.
    async fn reset(&self, client: &Client) -> Result<(), HandlerError>;

    /// The upcaster chain old events are decoded through (none by default).
    fn upcasters(&self) -> Upcasters {
        Upcasters::new()
    }
}

/// A read model over the events of several aggregate types, each arriving typed as one
/// `Event` (an enum over the sources), in global order.
///
/// Fed like a [`Projection`] (every `Projection` is one, of its one aggregate):
/// [`PostgresStore::projection_consumer`](crate::PostgresStore::projection_consumer) for a
/// subscription, or inline with
/// [`PostgresStore::add_projection`](crate::PostgresStore::add_projection).
#[async_trait]
pub trait MultiProjection: Send + Sync + 'static {
    /// What the projection receives: each source's events wrapped into one type.
    type Event: Send + Sync + 'static;

    /// Names the projection in errors and traces.
    fn name(&self) -> &str;

    /// The aggregates whose events the projection takes, each with its upcasters, and how
    /// each becomes an `Event`. Asked once, when the projection is registered.
    fn sources(&self) -> Sources<Self::Event>;

    /// Creates the read model's tables if they are missing (run when it is registered).
    async fn setup(&self, client: &Client) -> Result<(), HandlerError>;

    /// Applies one event to the read model; an error rolls back what the append (inline)
    /// or the page (fed by a subscription) did.
    async fn apply(
        &self,
        client: &Client,
        event: &EventEnvelope<Self::Event>,
    ) -> Result<(), HandlerError>;

    /// Empties the read model, before it is rebuilt from the whole log.
    async fn reset(&self, client: &Client) -> Result<(), HandlerError>;
}

#[async_trait]
impl<P: Projection> MultiProjection for P {
    type Event = <P::Aggregate as Aggregate>::Event;

    fn name(&self) -> &str {
        Projection::name(self)
    }

    /// The projection's one aggregate, through its upcasters.
    fn sources(&self) -> Sources<Self::Event> {
        Sources::new().with_upcasted::<P::Aggregate>(|event| event, self.upcasters())
    }

    async fn setup(&self, client: &Client) -> Result<(), HandlerError> {
        Projection::setup(self, client).await
    }

    async fn apply(
        &self,
        client: &Client,
        event: &EventEnvelope<Self::Event>,
    ) -> Result<(), HandlerError> {
        Projection::apply(self, client, event).await
    }

    async fn reset(&self, client: &Client) -> Result<(), HandlerError> {
        Projection::reset(self, client).await
    }
}

/// A projection with its types erased, so a store can hold several.
#[async_trait]
pub(crate) trait AnyProjection: Send + Sync {
    /// The events of the projection's aggregates, for a subscription to read.
    fn filter(&self) -> EventFilter;
    async fn setup(&self, client: &Client) -> Result<(), StoreError>;
    /// Applies `event` if it belongs to the projection's aggregates.
    async fn project(&self, client: &Client, event: &RecordedEvent) -> Result<(), StoreError>;
    async fn reset(&self, client: &Client) -> Result<(), StoreError>;
}

/// The inline projections of a store, in the order they were added.
pub(crate) type Projections = Arc<[Arc<dyn AnyProjection>]>;

/// `projection` with its types erased, its sources taken once.
pub(crate) fn erase(projection: impl MultiProjection) -> Arc<dyn AnyProjection> {
    let sources = projection.sources();
    Arc::new(Erased {
        projection,
        sources,
    })
}

struct Erased<P: MultiProjection> {
    projection: P,
    sources: Sources<P::Event>,
}

/// Runs user code, turning its panic into the projection's error: the transaction it runs
/// in is rolled back like for any other failure, and the store keeps working. Unwind
/// safety is asserted because what the code was changing is rolled back with it.
async fn guarded(work: impl Future<Output = Result<(), HandlerError>>) -> Result<(), HandlerError> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(format!("the projection panicked: {message}").into())
        })
}

impl<P: MultiProjection> Erased<P> {
    /// A failure of the projection's own setup or reset.
    fn failed(&self, action: &str, cause: HandlerError) -> StoreError {
        StoreError::Backend(
            format!(
                "projection `{}` could not {action}: {cause}",
                self.projection.name()
            )
            .into(),
        )
    }
}

#[async_trait]
impl<P: MultiProjection> AnyProjection for Erased<P> {
    fn filter(&self) -> EventFilter {
        self.sources.filter()
    }

    async fn setup(&self, client: &Client) -> Result<(), StoreError> {
        guarded(self.projection.setup(client))
            .await
            .map_err(|cause| self.failed("set up", cause))
    }

    async fn project(&self, client: &Client, event: &RecordedEvent) -> Result<(), StoreError> {
        if !self.sources.takes(&event.stream_id) {
            return Ok(());
        }
        let applied = async {
            match self.sources.decode(event.clone())? {
                Some(envelope) => self.projection.apply(client, &envelope).await,
                None => Ok(()),
            }
        };
        guarded(applied)
            .await
            .map_err(|source| StoreError::Projection {
                projection: self.projection.name().to_owned(),
                stream_id: event.stream_id.clone(),
                version: event.version,
                source,
            })
    }

    async fn reset(&self, client: &Client) -> Result<(), StoreError> {
        guarded(self.projection.reset(client))
            .await
            .map_err(|cause| self.failed("reset", cause))
    }
}
