//! Read models in the same SQLite file as the events: the [`Projection`] users write, and
//! the type-erased form the store runs inside its transactions (inline, in the append's;
//! or fed by a subscription, in one that also commits the checkpoint).

use crate::panics::catch;
use cqrs_core::{
    codec, is_stream_of, Aggregate, EventEnvelope, EventFilter, HandlerError, RecordedEvent,
    StoreError, Upcasters,
};
use rusqlite::Connection;
use std::sync::Arc;

/// The decoded events of a projection's aggregate.
pub type ProjectedEvent<P> = EventEnvelope<<<P as Projection>::Aggregate as Aggregate>::Event>;

/// A read model kept in tables of the event store's own SQLite file.
///
/// Register it inline with [`SqliteStore::add_projection`](crate::SqliteStore::add_projection)
/// (the read model is never behind its events, and a failing projection fails the append),
/// or feed it from a [`Subscription`](cqrs_core::Subscription) through
/// [`SqliteStore::projection_consumer`](crate::SqliteStore::projection_consumer)
/// (eventually consistent, the checkpoint committed with the read model). Every method gets
/// the connection inside the running transaction: write with it, and do not commit. Use
/// only that connection: the store's own methods called from a projection would wait for
/// the transaction the projection is running in.
pub trait Projection: Send + Sync + 'static {
    /// The aggregate whose events this projection reads; other streams are skipped.
    type Aggregate: Aggregate;

    /// Names the projection in errors and traces.
    fn name(&self) -> &str;

    /// Creates the read model's tables if they are missing (run when it is registered).
    fn setup(&self, conn: &Connection) -> Result<(), HandlerError>;

    /// Applies one event to the read model; an error rolls back what this event did.
    fn apply(&self, conn: &Connection, event: &ProjectedEvent<Self>) -> Result<(), HandlerError>;

    /// Empties the read model, before it is rebuilt from the whole log.
    fn reset(&self, conn: &Connection) -> Result<(), HandlerError>;

    /// The upcaster chain old events are decoded through (none by default).
    fn upcasters(&self) -> Upcasters {
        Upcasters::new()
    }
}

/// A projection with its types erased, so a store can hold several.
pub(crate) trait AnyProjection: Send + Sync {
    /// The events of the projection's aggregate, for a subscription to read.
    fn filter(&self) -> EventFilter;
    fn setup(&self, conn: &Connection) -> Result<(), StoreError>;
    /// Applies `event` if it belongs to the projection's aggregate.
    fn project(&self, conn: &Connection, event: &RecordedEvent) -> Result<(), StoreError>;
    fn reset(&self, conn: &Connection) -> Result<(), StoreError>;
}

/// `projection` with its types erased, its upcasters taken once.
pub(crate) fn erase(projection: impl Projection) -> Arc<dyn AnyProjection> {
    let upcasters = projection.upcasters();
    Arc::new(Erased {
        projection,
        upcasters,
    })
}

struct Erased<P> {
    projection: P,
    upcasters: Upcasters,
}

/// Runs user code, turning its panic into the projection's error: the transaction it runs
/// in is rolled back like for any other failure, and the store keeps working.
fn guarded(work: impl FnOnce() -> Result<(), HandlerError>) -> Result<(), HandlerError> {
    catch(work).unwrap_or_else(|panic| Err(format!("the projection panicked: {panic}").into()))
}

impl<P: Projection> Erased<P> {
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

impl<P: Projection> AnyProjection for Erased<P> {
    fn filter(&self) -> EventFilter {
        EventFilter::all().with_aggregate::<P::Aggregate>()
    }

    fn setup(&self, conn: &Connection) -> Result<(), StoreError> {
        guarded(|| self.projection.setup(conn)).map_err(|cause| self.failed("set up", cause))
    }

    fn project(&self, conn: &Connection, event: &RecordedEvent) -> Result<(), StoreError> {
        if !is_stream_of::<P::Aggregate>(&event.stream_id) {
            return Ok(());
        }
        guarded(|| {
            let envelope = codec::decode_envelope(event.clone(), &self.upcasters)?;
            self.projection.apply(conn, &envelope)
        })
        .map_err(|source| StoreError::Projection {
            projection: self.projection.name().to_owned(),
            stream_id: event.stream_id.clone(),
            version: event.version,
            source,
        })
    }

    fn reset(&self, conn: &Connection) -> Result<(), StoreError> {
        guarded(|| self.projection.reset(conn)).map_err(|cause| self.failed("reset", cause))
    }
}
