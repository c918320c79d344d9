//! `PostgresStore`: the event store contract on PostgreSQL. The one module that joins what
//! is stored (the SQL in [`crate::sql`]) to how it runs (the pool, the appender and the
//! listener in [`crate::run`]).

use crate::error::{pool_error, store_error, PostgresError};
use crate::options::PostgresOptions;
use crate::projection::{erase, AnyProjection, MultiProjection};
use crate::run::appender::{Appender, Inline};
use crate::run::connections;
use crate::run::listener::Listener;
use crate::sql::append::{AppendSql, Request, Unit};
use crate::sql::events::{self, EventReads};
use crate::sql::parked::{self, ParkedSql};
use crate::sql::state::{self, storable_text, storable_u64, StateSql};
use crate::sql::{schema, Names};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_core::backend::{check_limit, check_log_read, validate_stream_id};
use cqrs_core::parking::not_parked;
use cqrs_core::tracking::{
    check_tracking, check_untracked, AppendBatch, StreamAppend, TrackingStore,
};
use cqrs_core::visit_each;
use cqrs_core::{
    Appended, CheckpointStore, EventStore, ExpectedVersion, LogRead, NewEvent, ParkedEvent,
    ParkingStore, PositionWatch, RecordedEvent, Snapshot, SnapshotStore, StoreError, Visitor,
};
use deadpool_postgres::{Object, Pool};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The event store on PostgreSQL: a pool of connections, one appender task committing
/// this process's concurrent appends together, and a listener turning other processes'
/// appends (`NOTIFY`, polls) into the append signal. Clones share all of it; any number
/// of processes may connect to the same schema.
///
/// Its tasks and connections run on the tokio runtime it was connected on: keep that
/// runtime alive as long as the store.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    appender: Appender,
    reads: Arc<EventReads>,
    state: StateSql,
    parked: ParkedSql,
    schema: String,
    /// Inline projections, run in every append transaction; shared by all clones.
    inline: Inline,
    appended: Arc<watch::Sender<u64>>,
    listener: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` with default options (schema `cqrs`), creating or migrating the
    /// schema if needed. Call it within a tokio runtime.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PostgresOptions::new(url)).await
    }

    /// Connects with these options, creating or migrating the schema if needed; a schema
    /// this version cannot use is refused and left as it was ([`PostgresError`]).
    pub async fn connect_with(options: PostgresOptions) -> Result<Self, StoreError> {
        let runtime = Handle::try_current().map_err(|_| {
            StoreError::Backend(
                "PostgresStore::connect must be called within a tokio runtime".into(),
            )
        })?;
        let names = Names::new(&options.schema)?;
        let config = connections::config(&options)?;
        let target = connections::target(&config);
        let (mut client, driver) =
            connections::connect(&config, &runtime)
                .await
                .map_err(|error| PostgresError::Connect {
                    target: target.clone(),
                    reason: error.to_string(),
                })?;
        let ensured = schema::ensure(&mut client, &names).await;
        drop(client);
        let _ = driver.await;
        ensured?;
        let pool = connections::pool(config.clone(), &options, runtime.clone())?;
        let reads = Arc::new(EventReads::new(&names));
        let head = {
            let client = pool.get().await.map_err(pool_error)?;
            events::head(&client, &reads).await?
        };
        let appended = Arc::new(watch::channel(head).0);
        let inline: Inline = Arc::new(Mutex::new(Arc::new([])));
        let appender = Appender::start(
            &runtime,
            pool.clone(),
            Arc::new(AppendSql::new(&names)),
            options.notify,
            inline.clone(),
            appended.clone(),
        );
        let listener = Listener {
            config,
            pool: pool.clone(),
            reads: reads.clone(),
            channel: options.notify.then(|| names.channel().to_owned()),
            poll_interval: options.poll_interval,
            appended: appended.clone(),
        }
        .start(&runtime);
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                appender,
                reads,
                state: StateSql::new(&names),
                parked: ParkedSql::new(&names),
                schema: names.schema_name.clone(),
                inline,
                appended,
                listener,
            }),
        })
    }

    /// Runs `projection` inside every later append transaction of this store (and its
    /// clones): the read model commits with the events or not at all. If it fails on any
    /// event, that append (or tracking batch) is rolled back and refused with
    /// [`StoreError::Projection`]; the other appends sharing its transaction are not.
    /// Creates its tables first.
    ///
    /// Only appends through this process's store are projected: other processes appending
    /// to the same schema must register the same projection. Events stored before it was
    /// added are not projected: fill the read model from them first with
    /// [`PostgresStore::projection_consumer`] and a subscription's `rebuild`.
    pub async fn add_projection(&self, projection: impl MultiProjection) -> Result<(), StoreError> {
        let projection = self.set_up(projection).await?;
        let mut inline = self
            .inner
            .inline
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut projections = inline.to_vec();
        projections.push(projection);
        *inline = projections.into();
        Ok(())
    }

    /// Erases `projection` and creates its tables (in a transaction of their own).
    pub(crate) async fn set_up(
        &self,
        projection: impl MultiProjection,
    ) -> Result<Arc<dyn AnyProjection>, StoreError> {
        let erased = erase(projection);
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(store_error)?;
        erased.setup(transaction.client()).await?;
        transaction.commit().await.map_err(store_error)?;
        Ok(erased)
    }

    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.inner.pool.get().await.map_err(pool_error)
    }

    /// The PostgreSQL schema holding the store's tables, as given (unquoted): projections
    /// may keep their tables there too, so that they go with the store.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The statements of snapshots and checkpoints.
    pub(crate) fn state_sql(&self) -> &StateSql {
        &self.inner.state
    }
}

/// Refuses events PostgreSQL text cannot hold, naming the event and the field.
fn check_storable(events: &[NewEvent]) -> Result<(), StoreError> {
    for event in events {
        let id = event.event_id;
        storable_text(
            "events",
            || format!("the event type of event {id}"),
            &event.event_type,
        )?;
        storable_text(
            "events",
            || format!("the payload of event {id}"),
            &event.payload,
        )?;
    }
    Ok(())
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        validate_stream_id(stream_id)?;
        check_storable(&events)?;
        let unit = Unit {
            appends: vec![Request {
                stream_id: stream_id.to_owned(),
                expected,
                events,
            }],
            tracking: None,
            unpark: None,
        };
        let mut appended = self.inner.appender.append(unit).await?;
        appended.pop().ok_or_else(|| {
            StoreError::Backend("the appender answered an append with no outcome".into())
        })
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        check_limit(limit)?;
        validate_stream_id(stream_id)?;
        let client = self.client().await?;
        events::read_stream(&client, &self.inner.reads, stream_id, from_version, limit).await
    }

    /// Decodes each row in place (no owned event, no metadata parsed) for the visitor.
    async fn visit_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<usize, StoreError> {
        check_limit(limit)?;
        validate_stream_id(stream_id)?;
        let client = self.client().await?;
        events::visit_stream(
            &client,
            &self.inner.reads,
            stream_id,
            from_version,
            limit,
            visit,
        )
        .await
    }

    async fn read_stream_backward(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        check_limit(limit)?;
        validate_stream_id(stream_id)?;
        let client = self.client().await?;
        events::read_stream_backward(&client, &self.inner.reads, stream_id, from_version, limit)
            .await
    }

    async fn read_log(&self, read: &LogRead) -> Result<Vec<RecordedEvent>, StoreError> {
        check_log_read(read)?;
        let client = self.client().await?;
        events::read_log(&client, &self.inner.reads, read).await
    }

    /// A forward read of the whole log is decoded in place for the visitor (no owned
    /// event, no metadata parsed); other reads visit what `read_log` returns.
    async fn visit_log(
        &self,
        read: &LogRead,
        visit: &mut Visitor<'_>,
    ) -> Result<usize, StoreError> {
        check_log_read(read)?;
        let client = self.client().await?;
        match events::visit_log(&client, &self.inner.reads, read, visit).await? {
            Some(visited) => Ok(visited),
            None => {
                let events = events::read_log(&client, &self.inner.reads, read).await?;
                Ok(visit_each(&events, visit))
            }
        }
    }

    async fn read_events_by_id(
        &self,
        event_ids: &[Uuid],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        events::read_by_id(&client, &self.inner.reads, event_ids).await
    }

    async fn position_at(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
        let client = self.client().await?;
        events::position_at(&client, &self.inner.reads, at).await
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        validate_stream_id(stream_id)?;
        let client = self.client().await?;
        events::stream_version(&client, &self.inner.reads, stream_id).await
    }

    /// The position of the latest append seen: this process's as each commits, other
    /// processes' as their `NOTIFY` arrives or the next poll finds them.
    fn appends(&self) -> Option<PositionWatch> {
        Some(self.inner.appended.subscribe())
    }
}

#[async_trait]
impl SnapshotStore for PostgresStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        validate_stream_id(&snapshot.stream_id)?;
        let client = self.client().await?;
        state::save_snapshot(&client, &self.inner.state, &snapshot).await
    }

    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        validate_stream_id(stream_id)?;
        let client = self.client().await?;
        state::load_snapshot(&client, &self.inner.state, stream_id).await
    }
}

#[async_trait]
impl CheckpointStore for PostgresStore {
    async fn load_checkpoint(&self, subscription: &str) -> Result<u64, StoreError> {
        let client = self.client().await?;
        state::load_checkpoint(&client, &self.inner.state, subscription).await
    }

    async fn save_checkpoint(&self, subscription: &str, position: u64) -> Result<(), StoreError> {
        let client = self.client().await?;
        state::save_checkpoint(&client, &self.inner.state, subscription, position).await
    }

    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let client = self.client().await?;
        parked::checkpoints(&client, &self.inner.parked).await
    }
}

/// The batch goes through the appender like an append: one unit of its transaction, its
/// checkpoint read `FOR UPDATE` under the append lock and written with its events, all of
/// it refused if any of it is.
#[async_trait]
impl TrackingStore for PostgresStore {
    async fn append_batch(&self, batch: AppendBatch) -> Result<Vec<Appended>, StoreError> {
        check_tracking(batch.tracking.as_ref())?;
        if let Some(tracking) = &batch.tracking {
            let name = &tracking.subscription;
            storable_text("batch", || format!("subscription name {name:?}"), name)?;
            storable_u64("batch", tracking.position)?;
        }
        let unit = Unit {
            appends: requests(batch.appends)?,
            tracking: batch.tracking,
            unpark: None,
        };
        self.inner.appender.append(unit).await
    }

    /// One unit of the appender's transaction, like `append_batch`, that also deletes the
    /// parked entry (read `FOR UPDATE` under the append lock): refused whole if it is gone.
    async fn append_batch_unparking(
        &self,
        batch: AppendBatch,
        subscription: &str,
        position: u64,
    ) -> Result<Vec<Appended>, StoreError> {
        check_untracked(&batch)?;
        let name = subscription;
        storable_text("subscription", || format!("name {name:?}"), name)?;
        if i64::try_from(position).is_err() {
            // Past any position PostgreSQL holds: never parked.
            return Err(not_parked(subscription, position));
        }
        let unit = Unit {
            appends: requests(batch.appends)?,
            tracking: None,
            unpark: Some((subscription.to_owned(), position)),
        };
        self.inner.appender.append(unit).await
    }
}

/// A batch's appends as the appender takes them, each checked as an append is.
fn requests(appends: Vec<StreamAppend>) -> Result<Vec<Request>, StoreError> {
    appends
        .into_iter()
        .map(|append| {
            validate_stream_id(&append.stream_id)?;
            check_storable(&append.events)?;
            Ok(Request {
                stream_id: append.stream_id,
                expected: append.expected,
                events: append.events,
            })
        })
        .collect()
}

/// Parked entries are plain rows; removing one with a retried reaction's appends is
/// [`TrackingStore::append_batch_unparking`].
#[async_trait]
impl ParkingStore for PostgresStore {
    async fn park(&self, parked: ParkedEvent) -> Result<(), StoreError> {
        let client = self.client().await?;
        parked::park(&client, &self.inner.parked, &parked).await
    }

    async fn parked(&self, subscription: &str) -> Result<Vec<ParkedEvent>, StoreError> {
        let client = self.client().await?;
        parked::list(&client, &self.inner.parked, subscription).await
    }

    async fn unpark(&self, subscription: &str, position: u64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        parked::remove(&client, &self.inner.parked, subscription, position).await
    }
}
