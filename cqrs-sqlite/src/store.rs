//! `SqliteStore`: the event store contract on one SQLite file. The one module that joins
//! what is stored (the SQL in [`crate::sql`]) to how it runs (the writer, the readers and
//! the paging in [`crate::run`]).

use crate::buffer::EventBuffer;
use crate::error::{store_error, SqliteError};
use crate::options::SqliteOptions;
use crate::page::{Page, Range};
use crate::panics::lock;
use crate::projection::{erase, AnyProjection, MultiProjection};
use crate::run::paging::PagedReads;
use crate::run::paging::{AHEAD_ROWS, INLINE_ROWS};
use crate::run::readers::Readers;
use crate::run::writer::Writer;
use crate::sql::events::Ends;
use crate::sql::{checkpoints, events, schema, snapshots};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_core::backend::{check_limit, check_log_read, validate_stream_id};
use cqrs_core::tracking::{check_passed, check_tracking, AppendBatch, TrackingStore};
use cqrs_core::{
    visit_each, Appended, CheckpointStore, Direction, EventRef, EventStore, ExpectedVersion,
    LogRead, NewEvent, PositionWatch, RecordedEvent, Snapshot, SnapshotStore, StoreError, Visitor,
};
use rusqlite::Connection;
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The inline projections an append runs, in the order they were added.
type Projections = Arc<[Arc<dyn AnyProjection>]>;

/// The embedded event store: one SQLite file in WAL mode, one writer connection committing
/// appends in groups, and pooled read connections. Clones share all of it; several
/// processes may open the same file.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Readers>,
    pages: Arc<PagedReads>,
    /// Inline projections, run in every append's savepoint; shared by all clones. An
    /// append takes the list by cloning one `Arc`; registering one replaces the list.
    inline: Arc<Mutex<Projections>>,
    /// The position of the latest append committed through this store, for subscriptions.
    appended: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
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
            let writer = Writer::new(schema::open_writer(&path, &options)?);
            let open_reader = Box::new(move || schema::open_reader(&path, &options));
            let readers = Arc::new(Readers::new(writer.clone(), open_reader)?);
            let pages = Arc::new(PagedReads::new(Arc::clone(&readers), events::select));
            Ok(Self {
                writer,
                readers,
                pages,
                inline: Arc::new(Mutex::new(Arc::new([]))),
                appended: Arc::new(watch::channel(0).0),
            })
        })
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?
    }

    /// Runs `projection` inside every later append made through this store (and its
    /// clones), in the append's transaction: the read model commits with the events or not
    /// at all. If it fails on any event, the append is rolled back and returns
    /// [`StoreError::Projection`]. Creates its tables first.
    ///
    /// Only appends through this process's store are projected: another process writing
    /// the same file must register the same projection. Events stored before the
    /// projection was added are not projected: fill the read model from them first with
    /// [`SqliteStore::projection_consumer`] and a subscription's `rebuild`.
    pub async fn add_projection(&self, projection: impl MultiProjection) -> Result<(), StoreError> {
        let projection = self.set_up(projection).await?;
        let mut inline = lock(&self.inline);
        let mut projections = inline.to_vec();
        projections.push(projection);
        *inline = projections.into();
        Ok(())
    }

    /// Runs `query` on one of the store's read connections (off the async runtime), to read
    /// the tables projections keep: read models are queried where they live.
    pub async fn query<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.readers
            .run(move |conn| query(conn).map_err(store_error))
            .await
    }

    /// Erases `projection` and creates its tables through the writer.
    pub(crate) async fn set_up(
        &self,
        projection: impl MultiProjection,
    ) -> Result<Arc<dyn AnyProjection>, StoreError> {
        let erased = erase(projection);
        let setup = Arc::clone(&erased);
        self.writer.run(move |conn| setup.setup(conn)).await?;
        Ok(erased)
    }

    /// Applies `events` to `projection` and records the last one's position as the
    /// checkpoint of `subscription`, in one transaction: all of it or none of it.
    pub(crate) async fn project_page(
        &self,
        projection: Arc<dyn AnyProjection>,
        subscription: String,
        events: Vec<RecordedEvent>,
    ) -> Result<(), StoreError> {
        let Some(last) = events.last().map(|event| event.position) else {
            return Ok(());
        };
        self.writer
            .run(move |conn| {
                for event in &events {
                    projection.project(conn, event)?;
                }
                checkpoints::write(conn, &subscription, last)
            })
            .await
    }

    /// Empties `projection`'s read model and moves `subscription` back to the start, in one
    /// transaction.
    pub(crate) async fn reset_projection(
        &self,
        projection: Arc<dyn AnyProjection>,
        subscription: String,
    ) -> Result<(), StoreError> {
        self.writer
            .run(move |conn| {
                projection.reset(conn)?;
                checkpoints::write(conn, &subscription, 0)
            })
            .await
    }

    /// Moves the append signal on to `position`, never back.
    fn announce(&self, position: u64) {
        self.appended.send_if_modified(|latest| {
            let newer = position > *latest;
            if newer {
                *latest = position;
            }
            newer
        });
    }

    /// Reads a page, with the checks that find the events its `WHERE` cannot see: for a
    /// stream, the rows at its ends before the read (see [`events::stream_ends`]) and its
    /// versions' continuity after; for the log, no row placed before the first position.
    /// The caller checked the limit.
    async fn read(&self, page: Page) -> Result<Vec<RecordedEvent>, StoreError> {
        let (stream_id, ends) = match &page.range {
            Range::StreamForward { stream_id, from } => {
                let first = *from > 1; // a read from the start reads the first row itself
                (stream_id, Ends { first, last: false })
            }
            Range::StreamBackward { stream_id, .. } => (
                stream_id,
                Ends {
                    first: true,
                    last: true,
                },
            ),
            Range::Log {
                from,
                direction,
                filter,
            } => {
                self.readers.inline(events::check_positions)?;
                let (from, direction, all) = (*from, *direction, filter.is_all());
                let events = self.pages.read(page.clone()).await?;
                if !all {
                    let (first, last) = covered(from, direction, &events, page.limit);
                    self.readers
                        .inline(|conn| events::check_unreadable(conn, first, last))?;
                }
                return Ok(events);
            }
        };
        let last = self
            .readers
            .inline(|conn| events::stream_ends(conn, stream_id, ends))?;
        let events = self.pages.read(page.clone()).await?;
        page.check_versions(events.iter().map(|event| event.version), last)?;
        Ok(events)
    }
}

impl SqliteStore {
    /// Hands up to `limit` events of `range` to `visit`, borrowed, page by page: the first
    /// page of [`INLINE_ROWS`] on the caller's thread; if it came back full, the next
    /// pages of [`AHEAD_ROWS`] are read on the blocking pool while the caller visits the
    /// one before, two at once where keys are dense (the second one starting where the
    /// first would end; dropped if the first ends elsewhere): a long replay or catch-up
    /// reads on both cores while the caller decodes. A stream's versions are checked as
    /// they come: an event after a gap is never handed on; `check` sees each page's
    /// versions (the page cut to what was handed if `visit` stopped it).
    async fn visit_pages(
        &self,
        range: Range,
        limit: usize,
        visit: &mut Visitor<'_>,
        check: impl Fn(&Page, &[u64]) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        type Ahead = (Page, JoinHandle<Result<EventBuffer, StoreError>>);
        let read = |page: Page| -> Ahead {
            let reading = page.clone();
            let handle = self
                .readers
                .spawn(move |conn| events::read_buffer(conn, &reading));
            (page, handle)
        };
        let mut visited = 0;
        let mut page = Page {
            range,
            limit: limit.min(INLINE_ROWS),
        };
        // The first page straight from the rows (a short read, the usual one, is done).
        let mut seen = PageVisit::new(&page);
        self.readers.inline(|conn| {
            events::visit(conn, &page, &mut |event| seen.offer(event, &mut *visit))
        })?;
        let mut ahead: VecDeque<Ahead> = VecDeque::new();
        loop {
            check(&seen.checked(&page), &seen.versions)?;
            visited += seen.handed;
            let next = match seen.last {
                Some(last) if !seen.stopped && seen.versions.len() == page.limit => {
                    let left = limit - visited;
                    page.range
                        .after(last)
                        .filter(|_| left > 0)
                        .map(|range| Page {
                            range,
                            limit: left.min(AHEAD_ROWS),
                        })
                }
                _ => None,
            };
            let Some(next) = next else {
                return Ok(visited);
            };
            // What is in flight is kept only if it starts exactly where this page ended.
            if ahead.front().map(|(first, _)| first) != Some(&next) {
                ahead.clear();
            }
            let (reading_page, reading) = ahead.pop_front().unwrap_or_else(|| read(next.clone()));
            // The page after it is read while this one is visited.
            if ahead.is_empty() {
                let left = limit - visited - next.limit;
                if let Some(following) = next.following(left.min(AHEAD_ROWS)) {
                    ahead.push_back(read(following));
                }
            }
            let buffer = reading
                .await
                .map_err(|e| SqliteError::ReadTask(e.to_string()))??;
            page = reading_page;
            seen = PageVisit::new(&page);
            for event in buffer.iter() {
                if seen.offer(event, &mut *visit).is_break() {
                    break;
                }
            }
        }
    }
}

/// What a visit saw of one page: the versions read (for the page's check), how many
/// events it handed on, and whether the visitor stopped it.
struct PageVisit {
    versions: Vec<u64>,
    expected: Option<u64>,
    gap: bool,
    handed: usize,
    stopped: bool,
    /// The version and position of the last row read.
    last: Option<(u64, u64)>,
}

impl PageVisit {
    fn new(page: &Page) -> Self {
        Self {
            versions: Vec::with_capacity(page.limit.min(INLINE_ROWS)),
            expected: page.range.first_version(),
            gap: false,
            handed: 0,
            stopped: false,
            last: None,
        }
    }

    /// Hands `event` to `visit` unless a version is missing before it: past a gap nothing
    /// more is handed on, but the rest of the page is still read, so that a damaged row
    /// there is named as a read names it, before the page's check names the gap.
    fn offer(&mut self, event: EventRef<'_>, visit: &mut Visitor<'_>) -> ControlFlow<()> {
        self.versions.push(event.version);
        self.last = Some((event.version, event.position));
        if self
            .expected
            .is_some_and(|expected| event.version != expected)
        {
            self.gap = true;
        }
        if self.gap {
            return ControlFlow::Continue(());
        }
        self.expected = self.expected.map(|version| version.saturating_add(1));
        self.handed += 1;
        let flow = visit(event);
        self.stopped = flow.is_break();
        flow
    }

    /// The page as far as it was read: cut to what was handed if the visitor stopped it.
    fn checked(&self, page: &Page) -> Page {
        Page {
            range: page.range.clone(),
            limit: if self.stopped {
                self.versions.len()
            } else {
                page.limit
            },
        }
    }
}

/// The positions a filtered read of the log covered, lowest first: from where it started to
/// its last event when the page is full, else to the end of the log in its direction.
fn covered(from: u64, direction: Direction, events: &[RecordedEvent], limit: usize) -> (u64, u64) {
    let full = events.len() >= limit;
    let reached = events.last().map(|event| event.position).filter(|_| full);
    match direction {
        Direction::Forward => (from, reached.unwrap_or(u64::MAX)),
        Direction::Backward => (reached.unwrap_or(0), from),
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        new_events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        validate_stream_id(stream_id)?;
        let projections = Arc::clone(&lock(&self.inline));
        let stream_id = stream_id.to_owned();
        let appended = self
            .writer
            .run(move |conn| {
                let appended = events::append(conn, &stream_id, expected, new_events)?;
                for event in &appended.events {
                    for projection in projections.iter() {
                        projection.project(conn, event)?;
                    }
                }
                Ok(appended)
            })
            .await?;
        if let Some(last) = appended.events.last() {
            self.announce(last.position);
        }
        Ok(appended)
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        check_limit(limit)?;
        let range = Range::StreamForward {
            stream_id: stream_id.to_owned(),
            from: from_version,
        };
        self.read(Page { range, limit }).await
    }

    async fn read_stream_backward(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        check_limit(limit)?;
        let range = Range::StreamBackward {
            stream_id: stream_id.to_owned(),
            from: from_version,
        };
        self.read(Page { range, limit }).await
    }

    async fn read_log(&self, read: &LogRead) -> Result<Vec<RecordedEvent>, StoreError> {
        check_log_read(read)?;
        self.read(Page::of_log(read)).await
    }

    async fn visit_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<usize, StoreError> {
        check_limit(limit)?;
        let ends = Ends {
            first: from_version > 1, // a read from the start reads the first row itself
            last: false,
        };
        let last = self
            .readers
            .inline(|conn| events::stream_ends(conn, stream_id, ends))?;
        let range = Range::StreamForward {
            stream_id: stream_id.to_owned(),
            from: from_version,
        };
        self.visit_pages(range, limit, visit, |page, versions| {
            page.check_versions(versions.iter().copied(), last)
        })
        .await
    }

    async fn visit_log(
        &self,
        read: &LogRead,
        visit: &mut Visitor<'_>,
    ) -> Result<usize, StoreError> {
        check_log_read(read)?;
        if !read.filter.is_all() {
            // A filtered read merges index ranges: read it whole, then visit it.
            let events = self.read_log(read).await?;
            return Ok(visit_each(&events, visit));
        }
        self.readers.inline(events::check_positions)?;
        let page = Page::of_log(read);
        self.visit_pages(page.range, page.limit, visit, |_, _| Ok(()))
            .await
    }

    async fn read_events_by_id(
        &self,
        event_ids: &[Uuid],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // Few ids on the caller's thread, like any short read; many on the blocking pool.
        if event_ids.len() <= INLINE_ROWS {
            return self
                .readers
                .inline(|conn| events::select_by_ids(conn, event_ids));
        }
        let event_ids = event_ids.to_vec();
        self.readers
            .run(move |conn| events::select_by_ids(conn, &event_ids))
            .await
    }

    async fn position_at(&self, at: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
        // One index seek: on the caller's thread.
        self.readers.inline(|conn| events::position_at(conn, at))
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        self.readers
            .inline(|conn| events::stream_version(conn, stream_id))
    }

    fn appends(&self) -> Option<PositionWatch> {
        Some(self.appended.subscribe())
    }
}

/// One writer job: the checkpoint checked and every append made (each with the inline
/// projections) in the job's savepoint, so a refusal rolls all of it back.
#[async_trait]
impl TrackingStore for SqliteStore {
    async fn append_batch(&self, batch: AppendBatch) -> Result<Vec<Appended>, StoreError> {
        check_tracking(batch.tracking.as_ref())?;
        for append in &batch.appends {
            validate_stream_id(&append.stream_id)?;
        }
        let projections = Arc::clone(&lock(&self.inline));
        let outcomes = self
            .writer
            .run(move |conn| {
                if let Some(tracking) = &batch.tracking {
                    check_passed(tracking, checkpoints::read(conn, &tracking.subscription)?)?;
                }
                let outcomes = append_each(conn, &projections, batch.appends)?;
                if let Some(tracking) = &batch.tracking {
                    checkpoints::write(conn, &tracking.subscription, tracking.position)?;
                }
                Ok(outcomes)
            })
            .await?;
        self.announce_batch(&outcomes);
        Ok(outcomes)
    }

    /// See `store::parked`.
    async fn append_batch_unparking(
        &self,
        batch: AppendBatch,
        subscription: &str,
        position: u64,
    ) -> Result<Vec<Appended>, StoreError> {
        self.unparking(batch, subscription, position).await
    }
}

/// Makes a batch's appends in order, each with the inline projections, inside the caller's
/// writer job.
fn append_each(
    conn: &Connection,
    projections: &Projections,
    appends: Vec<cqrs_core::tracking::StreamAppend>,
) -> Result<Vec<Appended>, StoreError> {
    let mut outcomes = Vec::with_capacity(appends.len());
    for append in appends {
        let appended = events::append(conn, &append.stream_id, append.expected, append.events)?;
        for event in &appended.events {
            for projection in projections.iter() {
                projection.project(conn, event)?;
            }
        }
        outcomes.push(appended);
    }
    Ok(outcomes)
}

impl SqliteStore {
    /// Signals the last position a committed batch appended, if it appended any.
    fn announce_batch(&self, outcomes: &[Appended]) {
        let last = outcomes
            .iter()
            .filter_map(|appended| appended.events.last())
            .map(|event| event.position)
            .max();
        if let Some(last) = last {
            self.announce(last);
        }
    }
}

#[async_trait]
impl SnapshotStore for SqliteStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        self.writer
            .run(move |conn| snapshots::save(conn, &snapshot))
            .await
    }

    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        // One row by primary key: read on the caller's thread (see `Readers::inline`).
        self.readers.inline(|conn| snapshots::load(conn, stream_id))
    }
}

#[async_trait]
impl CheckpointStore for SqliteStore {
    async fn load_checkpoint(&self, subscription: &str) -> Result<u64, StoreError> {
        let subscription = subscription.to_owned();
        self.readers
            .run(move |conn| checkpoints::read(conn, &subscription))
            .await
    }

    async fn save_checkpoint(&self, subscription: &str, position: u64) -> Result<(), StoreError> {
        let subscription = subscription.to_owned();
        self.writer
            .run(move |conn| checkpoints::write(conn, &subscription, position))
            .await
    }

    async fn checkpoints(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.readers.run(checkpoints::list).await
    }
}

mod parked;
#[cfg(test)]
mod tests;
