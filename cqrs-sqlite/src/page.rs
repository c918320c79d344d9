//! Which events a read asks for ([`Range`] and [`Page`]), and how a page is cut: its first
//! rows, the rest after a partial read, two halves, the page after it. Plain values: the
//! SQL that reads a page is in `sql::events`, the threads that read it in `run::paging`.

use crate::integer::convert;
use cqrs_core::RecordedEvent;

/// Which events a read asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Range {
    /// A stream's events with version `>= from`, oldest first.
    StreamForward {
        /// The stream read.
        stream_id: String,
        /// The first version wanted.
        from: u64,
    },
    /// A stream's events with version `<= from`, newest first.
    StreamBackward {
        /// The stream read.
        stream_id: String,
        /// The last version wanted.
        from: u64,
    },
    /// Every event with position `>= from`, in global order.
    Global {
        /// The first position wanted.
        from: u64,
    },
}

impl Range {
    /// Where the range starts: a version or a position.
    pub fn from(&self) -> u64 {
        match self {
            Range::StreamForward { from, .. }
            | Range::StreamBackward { from, .. }
            | Range::Global { from } => *from,
        }
    }

    /// The key the range is ordered by, of one of its events.
    pub fn key(&self, event: &RecordedEvent) -> u64 {
        match self {
            Range::StreamForward { .. } | Range::StreamBackward { .. } => event.version,
            Range::Global { .. } => event.position,
        }
    }

    /// This range's events after `last` (`None`: there can be none).
    fn after(&self, last: &RecordedEvent) -> Option<Range> {
        Some(match self {
            Range::StreamForward { stream_id, .. } => Range::StreamForward {
                stream_id: stream_id.clone(),
                from: last.version.checked_add(1)?,
            },
            Range::StreamBackward { stream_id, .. } => Range::StreamBackward {
                stream_id: stream_id.clone(),
                from: last.version.checked_sub(1).filter(|&v| v > 0)?,
            },
            Range::Global { .. } => Range::Global {
                from: last.position.checked_add(1)?,
            },
        })
    }
}

/// A page of events: a range and how many of its events at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    /// Which events.
    pub range: Range,
    /// How many of them at most.
    pub limit: usize,
}

impl Page {
    /// The first `rows` events of this page (all of it if it is not longer).
    pub fn first(&self, rows: usize) -> Page {
        Page {
            range: self.range.clone(),
            limit: self.limit.min(rows),
        }
    }

    /// The rest of this page once `read` events ending with `last` were read (`None`: the
    /// page is complete).
    pub fn rest(&self, last: &RecordedEvent, read: usize) -> Option<Page> {
        let limit = self.limit.checked_sub(read).filter(|&left| left > 0)?;
        let range = self.range.after(last)?;
        Some(Page { range, limit })
    }

    /// The page of the same length after this one, which ended with `last` (forward reads
    /// only: backward ones do not come in sequences worth reading ahead).
    pub fn next(&self, last: &RecordedEvent) -> Option<Page> {
        match self.range {
            Range::StreamBackward { .. } => None,
            _ => Some(Page {
                range: self.range.after(last)?,
                limit: self.limit,
            }),
        }
    }

    /// The page cut after its first `rows` keys, for reading both parts at once: the high
    /// part starts `rows` keys past the start, which is where the low one ends when the keys
    /// have no gaps (the caller checks that they join up). `None` for backward reads.
    pub fn split_at(&self, rows: usize) -> Option<(Page, Page)> {
        let high_from = self
            .range
            .from()
            .checked_add(convert(rows, "rows of a page").ok()?)?;
        let high_range = match &self.range {
            Range::StreamForward { stream_id, .. } => Range::StreamForward {
                stream_id: stream_id.clone(),
                from: high_from,
            },
            Range::Global { .. } => Range::Global { from: high_from },
            Range::StreamBackward { .. } => return None,
        };
        let low = self.first(rows);
        let high = Page {
            range: high_range,
            limit: self.limit.checked_sub(rows)?,
        };
        Some((low, high))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_core::Metadata;

    fn event(stream_id: &str, version: u64, position: u64) -> RecordedEvent {
        cqrs_core::NewEvent {
            event_id: uuid::Uuid::nil(),
            event_type: "Counted".into(),
            schema_version: 1,
            payload: "{}".into(),
            metadata: Metadata::new(),
        }
        .into_recorded(stream_id, version, position, chrono::DateTime::UNIX_EPOCH)
    }

    fn global(from: u64, limit: usize) -> Page {
        Page {
            range: Range::Global { from },
            limit,
        }
    }

    #[test]
    fn a_page_continues_after_its_last_event_and_stops_when_full() {
        let page = global(10, 5);
        let last = event("s", 4, 12);
        assert_eq!(page.rest(&last, 3), Some(global(13, 2)));
        assert_eq!(page.rest(&last, 5), None);
        assert_eq!(page.next(&last), Some(global(13, 5)));
        assert_eq!(page.first(2), global(10, 2));
        assert_eq!(page.first(99), page);
        assert_eq!(page.next(&event("s", 1, u64::MAX)), None);

        let forward = Page {
            range: Range::StreamForward {
                stream_id: "s".into(),
                from: 1,
            },
            limit: 10,
        };
        let rest = forward.rest(&last, 4).unwrap();
        assert_eq!(rest.range.from(), 5, "a stream continues by version");
        assert_eq!(rest.limit, 6);

        let backward = Page {
            range: Range::StreamBackward {
                stream_id: "s".into(),
                from: 9,
            },
            limit: 10,
        };
        assert_eq!(backward.rest(&last, 1).unwrap().range.from(), 3);
        assert_eq!(
            backward.rest(&event("s", 1, 1), 1),
            None,
            "version 1 was last"
        );
        assert_eq!(backward.next(&last), None);
        assert_eq!(backward.split_at(5), None);
    }

    #[test]
    fn the_halves_of_a_page_start_where_the_low_one_ends_without_gaps() {
        let (low, high) = global(100, 1001).split_at(500).unwrap();
        assert_eq!((low, high), (global(100, 500), global(600, 501)));
        assert_eq!(global(u64::MAX, 10).split_at(5), None);
    }
}
