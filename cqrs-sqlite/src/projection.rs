//! Read models in the same SQLite file as the events: projections that run inside the
//! append's transaction (inline), or inside a subscription's transaction together with its
//! checkpoint (exactly-once effect).

use crate::checkpoints::write_checkpoint;
use crate::error::store_error;
use crate::store::SqliteStore;
use async_trait::async_trait;
use cqrs_core::{
    codec, is_stream_of, Aggregate, Consumer, EventEnvelope, HandlerError, RecordedEvent,
    StoreError, Upcasters,
};
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// The decoded events of a projection's aggregate.
pub type ProjectedEvent<P> = EventEnvelope<<<P as Projection>::Aggregate as Aggregate>::Event>;

/// A read model kept in tables of the event store's own SQLite file.
///
/// Register it inline with [`SqliteStore::add_projection`] (the read model is never behind
/// its events, and a failing projection fails the append), or feed it from a
/// [`Subscription`](cqrs_core::Subscription) through [`SqliteStore::projection_consumer`]
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
    fn setup(&self, conn: &Connection) -> Result<(), StoreError>;
    /// Applies `event` if it belongs to the projection's aggregate.
    fn project(&self, conn: &Connection, event: &RecordedEvent) -> Result<(), StoreError>;
    fn reset(&self, conn: &Connection) -> Result<(), StoreError>;
}

struct Erased<P> {
    projection: P,
    upcasters: Upcasters,
}

/// Runs user code, turning its panic into an error. A panic must not unwind through the
/// writer thread: it would stop every later write.
fn guarded(work: impl FnOnce() -> Result<(), HandlerError>) -> Result<(), HandlerError> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| Err("the projection panicked".into()))
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

/// Erases `projection` and creates its tables through the writer.
async fn prepare(
    store: &SqliteStore,
    projection: impl Projection,
) -> Result<Arc<dyn AnyProjection>, StoreError> {
    let upcasters = projection.upcasters();
    let erased: Arc<dyn AnyProjection> = Arc::new(Erased {
        projection,
        upcasters,
    });
    let setup = Arc::clone(&erased);
    store.writer().run(move |conn| setup.setup(conn)).await?;
    Ok(erased)
}

impl SqliteStore {
    /// Runs `projection` inside every later append made through this store (and its
    /// clones), in the append's transaction: the read model commits with the events or not
    /// at all. If it fails on any event, the append is rolled back and returns
    /// [`StoreError::Projection`]. Creates its tables first.
    ///
    /// Only appends through this process's store are projected: another process writing
    /// the same file must register the same projection. Events stored before the
    /// projection was added are not projected: fill the read model from them first with
    /// [`SqliteStore::projection_consumer`] and a subscription's `rebuild`.
    pub async fn add_projection(&self, projection: impl Projection) -> Result<(), StoreError> {
        let erased = prepare(self, projection).await?;
        self.register_inline(erased);
        Ok(())
    }

    /// Runs `query` on one of the store's read connections (off the async runtime), to read
    /// the tables projections keep: read models are queried where they live.
    pub async fn query<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.readers()
            .run(move |conn| query(conn).map_err(store_error))
            .await
    }

    /// A [`Consumer`] for a [`Subscription`](cqrs_core::Subscription) that applies
    /// `projection` and stores the subscription's checkpoint in the same transaction, so
    /// a crash can neither lose an event nor apply one twice. Creates its tables first.
    pub async fn projection_consumer(
        &self,
        projection: impl Projection,
    ) -> Result<ProjectionConsumer, StoreError> {
        Ok(ProjectionConsumer {
            store: self.clone(),
            projection: prepare(self, projection).await?,
        })
    }
}

/// Feeds a [`Projection`] from a subscription, committing each event's changes with the
/// checkpoint (see [`SqliteStore::projection_consumer`]).
pub struct ProjectionConsumer {
    store: SqliteStore,
    projection: Arc<dyn AnyProjection>,
}

#[async_trait]
impl Consumer for ProjectionConsumer {
    async fn checkpoint(&self, subscription: &str) -> Result<u64, HandlerError> {
        use cqrs_core::CheckpointStore;
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
        let Some(last) = events.last().map(|event| event.position) else {
            return Ok(());
        };
        let projection = Arc::clone(&self.projection);
        let subscription = subscription.to_owned();
        let events = events.to_vec();
        self.store
            .writer()
            .run(move |conn| {
                for event in &events {
                    projection.project(conn, event)?;
                }
                write_checkpoint(conn, &subscription, last)
            })
            .await?;
        Ok(())
    }

    async fn reset(&self, subscription: &str) -> Result<(), HandlerError> {
        let projection = Arc::clone(&self.projection);
        let subscription = subscription.to_owned();
        self.store
            .writer()
            .run(move |conn| {
                projection.reset(conn)?;
                write_checkpoint(conn, &subscription, 0)
            })
            .await?;
        Ok(())
    }
}
