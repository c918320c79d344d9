//! How a page of events is read: its first rows on the caller's thread, the rest on tokio's
//! blocking pool, a long rest in two halves at once, and the next page read ahead.
//!
//! A page longer than [`INLINE_ROWS`] continues on the blocking pool, so a long read never
//! holds up the async runtime for more than those rows. Long reads come in sequences of
//! pages (replays, catch-ups, subscriptions), so once a long page came back full, the next
//! one is read ahead while the caller works on this one (see [`ReadAhead`]).
//!
//! What a page is and how it is cut is in [`crate::page`]; the SQL that reads one is given
//! to [`PagedReads::new`], so this module runs reads without knowing the schema.

use crate::page::Page;
use crate::panics::lock;
use crate::run::readers::Readers;
use cqrs_core::{RecordedEvent, StoreError};
use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// Rows of a page read on the caller's thread; the rest of a longer page is read on the
/// blocking pool: few enough that the async worker serving the caller is held only briefly.
pub(crate) const INLINE_ROWS: usize = 256;

/// Rows of each page a visit reads ahead on the blocking pool while the caller visits the
/// page before: enough that handing a page between threads costs little per row.
pub(crate) const AHEAD_ROWS: usize = 2048;

/// Rows past the inline ones from which a page is read in two halves at once, and the
/// length from which a full page has the next one read ahead.
pub(crate) const PARALLEL_ROWS: usize = 1024;

/// Longer pages are read in one go: a huge limit says "everything", not how much is there.
const MAX_SPLIT_ROWS: usize = 1 << 20;

/// Reads one page of events on a connection, in the page's order.
pub(crate) type SelectPage = fn(&Connection, &Page) -> Result<Vec<RecordedEvent>, StoreError>;

/// Pages of events read through the pool, split and read ahead.
pub(crate) struct PagedReads {
    readers: Arc<Readers>,
    select: SelectPage,
    ahead: Mutex<Option<ReadAhead>>,
}

/// The page after the last full long page, being read on the blocking pool.
///
/// It is used only if it comes back full: a full page read earlier is the page a read now
/// would give, because later commits only add events after every stored one (positions
/// grow in commit order; a stream's versions grow and never change). A short one may
/// miss events committed since, so it is read again.
struct ReadAhead {
    page: Page,
    events: JoinHandle<Result<Vec<RecordedEvent>, StoreError>>,
}

impl PagedReads {
    /// Reads pages with `select` on the connections of `readers`.
    pub fn new(readers: Arc<Readers>, select: SelectPage) -> Self {
        Self {
            readers,
            select,
            ahead: Mutex::new(None),
        }
    }

    /// The events of `page`: its first [`INLINE_ROWS`] rows on the caller's thread, the
    /// rest (if any) on the blocking pool, or all of it from the page read ahead.
    pub async fn read(self: &Arc<Self>, page: Page) -> Result<Vec<RecordedEvent>, StoreError> {
        let ahead = lock(&self.ahead).take_if(|ahead| ahead.page == page);
        if let Some(ahead) = ahead {
            if let Ok(Ok(events)) = ahead.events.await {
                if events.len() == page.limit {
                    self.read_ahead(&page, &events);
                    return Ok(events);
                }
            }
        }
        let first = page.first(INLINE_ROWS);
        let select = self.select;
        let mut events = self.readers.inline(|conn| select(conn, &first))?;
        let rest = match events.last() {
            Some(last) if events.len() == first.limit => page.rest(last, first.limit),
            _ => None, // the range ended within the inline rows
        };
        if let Some(rest) = rest {
            events.extend(self.rest_of_page(rest).await?);
        }
        self.read_ahead(&page, &events);
        Ok(events)
    }

    /// Starts reading the page after `events` if they are a full long page of `page`.
    fn read_ahead(self: &Arc<Self>, page: &Page, events: &[RecordedEvent]) {
        let next = match events.last() {
            Some(last) if events.len() == page.limit && page.limit >= PARALLEL_ROWS => {
                page.next(last)
            }
            _ => None,
        };
        let Some(next) = next else {
            return;
        };
        let reads = Arc::clone(self);
        let page = next.clone();
        let events = tokio::spawn(async move { reads.rest_of_page(next).await });
        if let Some(unused) = lock(&self.ahead).replace(ReadAhead { page, events }) {
            unused.events.abort();
        }
    }

    /// Reads the rest of a long page on the blocking pool, its two halves at once on two
    /// connections when the page is long enough (replays and catch-ups are bound by
    /// decoding rows, which then runs on two cores).
    async fn rest_of_page(self: &Arc<Self>, rest: Page) -> Result<Vec<RecordedEvent>, StoreError> {
        let Some((low, high)) = halves(&rest) else {
            return self.run(rest).await;
        };
        let (low_limit, high_from) = (low.limit, high.range.from());
        let (low, high) = tokio::join!(self.run(low), self.run(high));
        let (mut low, high) = (low?, high?);
        // The halves join up when the low one holds every key below the high one's start
        // (keys of a stream's versions, and positions, have no gaps in practice).
        let dense = low.len() == low_limit
            && low
                .last()
                .is_some_and(|last| rest.range.key(last).checked_add(1) == Some(high_from));
        if dense || (low.len() < low_limit && high.is_empty()) {
            low.extend(high);
            return Ok(low);
        }
        // A gap, or events committed between the two reads: read on from the low half.
        let after = match low.last() {
            Some(last) => rest.rest(last, low.len()),
            None => Some(rest),
        };
        if let Some(after) = after {
            low.extend(self.run(after).await?);
        }
        Ok(low)
    }

    /// Reads `page` whole on a pooled connection on the blocking pool.
    async fn run(&self, page: Page) -> Result<Vec<RecordedEvent>, StoreError> {
        let select = self.select;
        self.readers.run(move |conn| select(conn, &page)).await
    }
}

/// The page cut in two at half its length, for reading both at once: `None` for a page
/// too short to be worth two threads, for an unbounded one, and for backward reads.
fn halves(page: &Page) -> Option<(Page, Page)> {
    if !(PARALLEL_ROWS..=MAX_SPLIT_ROWS).contains(&page.limit) {
        return None;
    }
    page.split_at(page.limit / 2)
}
