//! Read models in the same SQLite file as the events: the [`Projection`] (of one aggregate)
//! and [`MultiProjection`] (of several) users write, and the type-erased form the store runs
//! inside its transactions (inline, in the append's; or fed by a subscription, in one that
//! also commits the checkpoint).

use crate::panics::catch;
use cqrs_core::{
    Aggregate, EventEnvelope, EventFilter, HandlerError, RecordedEvent, Sources, StoreError,
    Upcasters,
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

/// A read model over the events of several aggregate types, each arriving typed as one
/// `Event` (an enum over the sources), in global order: an account statement that lists
/// transfers, a dashboard over orders and payments.
///
/// Fed like a [`Projection`] (every `Projection` is one, of its one aggregate):
/// [`SqliteStore::projection_consumer`](crate::SqliteStore::projection_consumer) for a
/// subscription, which reads the log once, filtered to the sources' categories, and commits
/// each page with its checkpoint; or inline with
/// [`SqliteStore::add_projection`](crate::SqliteStore::add_projection).
pub trait MultiProjection: Send + Sync + 'static {
    /// What the projection receives: each source's events wrapped into one type.
    type Event: Send + Sync + 'static;

    /// Names the projection in errors and traces.
    fn name(&self) -> &str;

    /// The aggregates whose events the projection takes, each with its upcasters, and how
    /// each becomes an `Event`. Asked once, when the projection is registered.
    fn sources(&self) -> Sources<Self::Event>;

    /// Creates the read model's tables if they are missing (run when it is registered).
    fn setup(&self, conn: &Connection) -> Result<(), HandlerError>;

    /// Applies one event to the read model; an error rolls back what this event did.
    fn apply(
        &self,
        conn: &Connection,
        event: &EventEnvelope<Self::Event>,
    ) -> Result<(), HandlerError>;

    /// Empties the read model, before it is rebuilt from the whole log.
    fn reset(&self, conn: &Connection) -> Result<(), HandlerError>;
}

impl<P: Projection> MultiProjection for P {
    type Event = <P::Aggregate as Aggregate>::Event;

    fn name(&self) -> &str {
        Projection::name(self)
    }

    /// The projection's one aggregate, through its upcasters.
    fn sources(&self) -> Sources<Self::Event> {
        Sources::new().with_upcasted::<P::Aggregate>(|event| event, self.upcasters())
    }

    fn setup(&self, conn: &Connection) -> Result<(), HandlerError> {
        Projection::setup(self, conn)
    }

    fn apply(
        &self,
        conn: &Connection,
        event: &EventEnvelope<Self::Event>,
    ) -> Result<(), HandlerError> {
        Projection::apply(self, conn, event)
    }

    fn reset(&self, conn: &Connection) -> Result<(), HandlerError> {
        Projection::reset(self, conn)
    }
}

/// A projection with its types erased, so a store can hold several.
pub(crate) trait AnyProjection: Send + Sync {
    /// The events of the projection's aggregates, for a subscription to read.
    fn filter(&self) -> EventFilter;
    fn setup(&self, conn: &Connection) -> Result<(), StoreError>;
    /// Applies `event` if it belongs to the projection's aggregate.
    fn project(&self, conn: &Connection, event: &RecordedEvent) -> Result<(), StoreError>;
    fn reset(&self, conn: &Connection) -> Result<(), StoreError>;
}

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
/// in is rolled back like for any other failure, and the store keeps working.
fn guarded(work: impl FnOnce() -> Result<(), HandlerError>) -> Result<(), HandlerError> {
    catch(work).unwrap_or_else(|panic| Err(format!("the projection panicked: {panic}").into()))
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

impl<P: MultiProjection> AnyProjection for Erased<P> {
    fn filter(&self) -> EventFilter {
        self.sources.filter()
    }

    fn setup(&self, conn: &Connection) -> Result<(), StoreError> {
        guarded(|| self.projection.setup(conn)).map_err(|cause| self.failed("set up", cause))
    }

    fn project(&self, conn: &Connection, event: &RecordedEvent) -> Result<(), StoreError> {
        if !self.sources.takes(&event.stream_id) {
            return Ok(());
        }
        guarded(|| match self.sources.decode(event.clone())? {
            Some(envelope) => self.projection.apply(conn, &envelope),
            None => Ok(()),
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
