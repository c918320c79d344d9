//! Which events a read asks for ([`Range`] and [`Page`]), and how a page is cut: its first
//! rows, the rest after a partial read, two halves, the page after it. Plain values: the
//! SQL that reads a page is in `sql::events`, the threads that read it in `run::paging`.

use crate::integer::convert;
use cqrs_core::{Direction, EventFilter, LogRead, RecordedEvent, StoreError};

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
    /// The events of the global log that `filter` takes, with position `>= from`
    /// ascending (forward) or `<= from` descending (backward).
    Log {
        /// The first position wanted (the last one, backward).
        from: u64,
        /// Oldest or newest first.
        direction: Direction,
        /// Which events.
        filter: EventFilter,
    },
}

impl Range {
    /// Where the range starts: a version or a position.
    pub fn from(&self) -> u64 {
        match self {
            Range::StreamForward { from, .. }
            | Range::StreamBackward { from, .. }
            | Range::Log { from, .. } => *from,
        }
    }

    /// The key the range is ordered by, of one of its events.
    pub fn key(&self, event: &RecordedEvent) -> u64 {
        match self {
            Range::StreamForward { .. } | Range::StreamBackward { .. } => event.version,
            Range::Log { .. } => event.position,
        }
    }

    /// The version a forward read of a stream must find first (`None`: not such a read).
    pub fn first_version(&self) -> Option<u64> {
        match self {
            Range::StreamForward { from, .. } => Some((*from).max(1)),
            Range::StreamBackward { .. } | Range::Log { .. } => None,
        }
    }

    /// This range's events after the event with this `(version, position)` (`None`: there
    /// can be none).
    pub fn after(&self, (version, position): (u64, u64)) -> Option<Range> {
        Some(match self {
            Range::StreamForward { stream_id, .. } => Range::StreamForward {
                stream_id: stream_id.clone(),
                from: version.checked_add(1)?,
            },
            Range::StreamBackward { stream_id, .. } => Range::StreamBackward {
                stream_id: stream_id.clone(),
                from: version.checked_sub(1).filter(|&v| v > 0)?,
            },
            Range::Log {
                direction, filter, ..
            } => Range::Log {
                from: match direction {
                    Direction::Forward => position.checked_add(1)?,
                    Direction::Backward => position.checked_sub(1).filter(|&p| p > 0)?,
                },
                direction: *direction,
                filter: filter.clone(),
            },
        })
    }

    /// Whether the range's keys run without gaps, so that a page can be cut in two halves
    /// by counting keys: a stream's versions and, unfiltered, the log's positions, forward.
    fn is_dense_forward(&self) -> bool {
        match self {
            Range::StreamForward { .. } => true,
            Range::StreamBackward { .. } => false,
            Range::Log {
                direction, filter, ..
            } => *direction == Direction::Forward && filter.is_all(),
        }
    }
}

impl Page {
    /// The page a read of the global log asks for.
    pub fn of_log(read: &LogRead) -> Page {
        Page {
            range: Range::Log {
                from: read.from,
                direction: read.direction,
                filter: read.filter.clone(),
            },
            limit: read.limit,
        }
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
        let range = self.range.after((last.version, last.position))?;
        Some(Page { range, limit })
    }

    /// The page of the same length after this one, which ended with `last` (forward reads
    /// only: backward ones do not come in sequences worth reading ahead).
    pub fn next(&self, last: &RecordedEvent) -> Option<Page> {
        let forward = match &self.range {
            Range::StreamForward { .. } => true,
            Range::StreamBackward { .. } => false,
            Range::Log { direction, .. } => *direction == Direction::Forward,
        };
        if !forward {
            return None;
        }
        Some(Page {
            range: self.range.after((last.version, last.position))?,
            limit: self.limit,
        })
    }

    /// The page of `limit` events that follows this one if it comes back full and its keys
    /// have no gaps, so that it can be read before this one is (`None` where keys are not
    /// dense: backward and filtered reads).
    pub fn following(&self, limit: usize) -> Option<Page> {
        if limit == 0 {
            return None;
        }
        let both = Page {
            range: self.range.clone(),
            limit: self.limit.checked_add(limit)?,
        };
        both.split_at(self.limit).map(|(_, following)| following)
    }

    /// The page cut after its first `rows` keys, for reading both parts at once: the high
    /// part starts `rows` keys past the start, which is where the low one ends when the keys
    /// have no gaps (the caller checks that they join up). `None` for backward and
    /// filtered reads, whose keys are not dense.
    pub fn split_at(&self, rows: usize) -> Option<(Page, Page)> {
        if !self.range.is_dense_forward() {
            return None;
        }
        let high_from = self
            .range
            .from()
            .checked_add(convert(rows, "rows of a page").ok()?)?;
        let mut high_range = self.range.clone();
        match &mut high_range {
            Range::StreamForward { from, .. }
            | Range::StreamBackward { from, .. }
            | Range::Log { from, .. } => *from = high_from,
        }
        let low = self.first(rows);
        let high = Page {
            range: high_range,
            limit: self.limit.checked_sub(rows)?,
        };
        Some((low, high))
    }
}

impl Page {
    /// Checks that `events`, read for this page of a stream whose highest version was
    /// `last` just before the read (`None`: no event), are that stream's versions without
    /// a gap: a stream holds exactly versions 1..n, and a version missing from a read is
    /// an event whose stream id or version was damaged, which the read's `WHERE` no longer
    /// matches. `Corrupt` names the first version missing. Global pages are not checked:
    /// positions may have gaps.
    ///
    /// Versions are never removed and only ever added past `last`, so every version up to
    /// `last` was there when the read ran, whatever was appended since.
    pub fn check_versions(
        &self,
        versions: impl Iterator<Item = u64> + Clone,
        last: Option<u64>,
    ) -> Result<(), StoreError> {
        let (stream_id, forward, from) = match &self.range {
            Range::StreamForward { stream_id, from } => (stream_id, true, *from),
            Range::StreamBackward { stream_id, from } => (stream_id, false, *from),
            Range::Log { .. } => return Ok(()),
        };
        let last = last.unwrap_or(0);
        let missing = |version: u64, found: String| StoreError::Corrupt {
            stream_id: stream_id.clone(),
            version,
            position: None,
            reason: format!("version {version} is missing: {found}"),
        };
        let short = versions.clone().count() < self.limit;
        if forward {
            let mut expected = from.max(1);
            for version in versions {
                if version != expected {
                    return Err(missing(expected, format!("the read found {version} there")));
                }
                expected = expected.saturating_add(1);
            }
            if short && expected <= last {
                return Err(missing(
                    expected,
                    format!("the read ended before it, and the stream's last version is {last}"),
                ));
            }
        } else {
            let top = from.min(last);
            let mut expected = match versions.clone().next() {
                Some(first) if first >= top => first,
                Some(first) => return Err(missing(top, format!("the read started at {first}"))),
                None => top,
            };
            for version in versions {
                if version != expected {
                    return Err(missing(expected, format!("the read found {version} there")));
                }
                expected = expected.saturating_sub(1);
            }
            if short && expected >= 1 {
                return Err(missing(
                    expected,
                    "the read ended before it, and a stream starts at version 1".to_owned(),
                ));
            }
        }
        Ok(())
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
        Page::of_log(&LogRead::forward(from, limit))
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
    fn the_following_page_starts_where_a_full_dense_page_ends() {
        assert_eq!(global(10, 5).following(3), Some(global(15, 3)));
        assert_eq!(global(10, 5).following(0), None);
        let filtered = Page::of_log(&LogRead {
            filter: EventFilter::all().with_categories(["c"]),
            ..LogRead::forward(10, 5)
        });
        assert_eq!(
            filtered.following(3),
            None,
            "positions of a filter have gaps"
        );
        assert_eq!(global(u64::MAX - 2, 5).following(3), None);
    }

    #[test]
    fn filtered_and_backward_log_pages_continue_by_position_and_never_split() {
        let filter = EventFilter::all().with_categories(["S"]);
        let filtered = Page::of_log(&LogRead::forward(10, 5).matching(filter.clone()));
        let last = event("S-1", 4, 12);
        let expected = Page::of_log(&LogRead::forward(13, 2).matching(filter.clone()));
        assert_eq!(filtered.rest(&last, 3), Some(expected));
        assert_eq!(
            filtered.next(&last),
            Some(Page::of_log(&LogRead::forward(13, 5).matching(filter))),
            "a filtered page is read ahead like any forward one"
        );
        assert_eq!(filtered.split_at(2), None, "its positions have gaps");

        let backward = Page::of_log(&LogRead::backward(u64::MAX, 5));
        assert_eq!(
            backward.rest(&last, 3),
            Some(Page::of_log(&LogRead::backward(11, 2)))
        );
        assert_eq!(
            backward.rest(&event("S-1", 1, 1), 1),
            None,
            "position 1 was last"
        );
        assert_eq!(backward.next(&last), None);
        assert_eq!(backward.split_at(2), None);
    }

    #[test]
    fn the_halves_of_a_page_start_where_the_low_one_ends_without_gaps() {
        let (low, high) = global(100, 1001).split_at(500).unwrap();
        assert_eq!((low, high), (global(100, 500), global(600, 501)));
        assert_eq!(global(u64::MAX, 10).split_at(5), None);
    }

    fn stream(forward: bool, from: u64, limit: usize) -> Page {
        let stream_id = "s".to_owned();
        let range = if forward {
            Range::StreamForward { stream_id, from }
        } else {
            Range::StreamBackward { stream_id, from }
        };
        Page { range, limit }
    }

    /// The version a check reports missing (`None`: the read is whole).
    fn missing(page: &Page, versions: &[u64], last: Option<u64>) -> Option<u64> {
        let events: Vec<_> = versions.iter().map(|&v| event("s", v, v)).collect();
        match page.check_versions(events.iter().map(|event| event.version), last) {
            Ok(()) => None,
            Err(StoreError::Corrupt {
                version, position, ..
            }) => {
                assert_eq!(position, None);
                Some(version)
            }
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn a_stream_read_must_be_its_versions_without_a_gap() {
        let forward = stream(true, 1, 10);
        assert_eq!(missing(&forward, &[1, 2, 3], Some(3)), None);
        assert_eq!(
            missing(&forward, &[1, 2, 3, 4], Some(3)),
            None,
            "appended since"
        );
        assert_eq!(missing(&forward, &[], None), None, "an unknown stream");
        assert_eq!(missing(&forward, &[1, 3], Some(3)), Some(2));
        assert_eq!(missing(&forward, &[2, 3], Some(3)), Some(1));
        assert_eq!(missing(&forward, &[1, 2], Some(3)), Some(3), "ended early");
        assert_eq!(missing(&forward, &[], Some(3)), Some(1));
        assert_eq!(missing(&stream(true, 0, 2), &[1, 2], Some(9)), None, "full");
        assert_eq!(missing(&stream(true, 5, 2), &[6, 7], Some(9)), Some(5));
        assert_eq!(
            missing(&stream(true, 5, 2), &[], Some(4)),
            None,
            "past the end"
        );

        let backward = stream(false, u64::MAX, 10);
        assert_eq!(missing(&backward, &[3, 2, 1], Some(3)), None);
        assert_eq!(
            missing(&backward, &[4, 3, 2, 1], Some(3)),
            None,
            "appended since"
        );
        assert_eq!(missing(&backward, &[], None), None);
        assert_eq!(missing(&backward, &[2, 1], Some(3)), Some(3));
        assert_eq!(missing(&backward, &[3, 1], Some(3)), Some(2));
        assert_eq!(missing(&backward, &[3, 2], Some(3)), Some(1), "ended early");
        assert_eq!(missing(&backward, &[], Some(3)), Some(3));
        assert_eq!(missing(&stream(false, 2, 5), &[2, 1], Some(3)), None);
        assert_eq!(missing(&stream(false, 3, 1), &[2], Some(3)), Some(3));
        assert_eq!(
            missing(&stream(false, 9, 2), &[3, 2], Some(3)),
            None,
            "full"
        );
        assert_eq!(
            missing(&stream(false, 0, 2), &[], Some(3)),
            None,
            "before 1"
        );
        assert!(global(1, 5).check_versions([].into_iter(), Some(3)).is_ok());
    }
}
