//! `SqliteStore`: the event store contract on one SQLite file.

use crate::options::SqliteOptions;
use crate::projection::AnyProjection;
use crate::reader::{stream_version, EventQuery, Range, Readers};
use crate::schema::open_writer;
use crate::writer::{insert, Writer};
use async_trait::async_trait;
use cqrs_core::backend::recorded_now;
use cqrs_core::backend::validate_stream_id;
use cqrs_core::{Appended, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError};
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use tokio::sync::watch;

/// The embedded event store: one SQLite file in WAL mode, one writer connection committing
/// appends in groups, and pooled read connections. Clones share all of it; several
/// processes may open the same file.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Readers>,
    /// Inline projections, run in every append's savepoint; shared by all clones.
    inline: Arc<RwLock<Vec<Arc<dyn AnyProjection>>>>,
    /// The position of the latest append committed through this store, for subscriptions.
    appended: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Adds an inline projection for every later append (see `add_projection`).
    pub(crate) fn register_inline(&self, projection: Arc<dyn AnyProjection>) {
        self.inline
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(projection);
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    pub(crate) fn readers(&self) -> &Arc<Readers> {
        &self.readers
    }

    /// Opens (creating and migrating if needed) the store at `path` with default options.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens the store at `path` with these options.
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let conn = open_writer(&path, &options)?;
            let writer = Writer::start(conn)?;
            let readers = Readers::new(writer.clone(), path, options);
            readers.open_idle()?;
            Ok(Self {
                readers: Arc::new(readers),
                writer,
                inline: Arc::default(),
                appended: Arc::new(watch::channel(0).0),
            })
        })
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        validate_stream_id(stream_id)?;
        let projections = self
            .inline
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let stream_id = stream_id.to_owned();
        let appended = self
            .writer
            .run(move |conn| {
                let appended = insert(conn, &stream_id, expected, events, recorded_now())?;
                for event in &appended.events {
                    for projection in &projections {
                        projection.project(conn, event)?;
                    }
                }
                Ok(appended)
            })
            .await?;
        if let Some(last) = appended.events.last() {
            self.appended.send_if_modified(|latest| {
                let newer = last.position > *latest;
                if newer {
                    *latest = last.position;
                }
                newer
            });
        }
        Ok(appended)
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let range = Range::StreamForward {
            stream_id: stream_id.to_owned(),
            from: from_version,
        };
        self.readers.events(EventQuery { range, limit }).await
    }

    async fn read_stream_backward(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let range = Range::StreamBackward {
            stream_id: stream_id.to_owned(),
            from: from_version,
        };
        self.readers.events(EventQuery { range, limit }).await
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let range = Range::Global {
            from: from_position,
        };
        self.readers.events(EventQuery { range, limit }).await
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        self.readers.inline(|conn| stream_version(conn, stream_id))
    }

    fn appends(&self) -> Option<cqrs_core::PositionWatch> {
        Some(self.appended.subscribe())
    }
}
