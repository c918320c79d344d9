//! [`FeedConfig`]: the settings of one deployment of the feed (page size, limits, waits).

use std::time::Duration;

/// How a deployment serves its feed. The page size is part of every archived page's URL and
/// ETag, so it is fixed for the life of a deployment: changing it changes every page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedConfig {
    /// Positions per page of the feed (`/feed/pages/{n}` holds positions
    /// `(n-1)*page_size+1 ..= n*page_size`).
    pub page_size: u64,
    /// The largest `limit` a cursor, stream or trace read may ask; larger ones are capped.
    pub max_limit: usize,
    /// The longest a long-poll (`wait`) may hold a request open.
    pub max_wait: Duration,
    /// How often a waiting request or a live stream reads the log when the store gives no
    /// append signal (writers in other processes): the bound on how late they see events.
    pub poll_interval: Duration,
    /// How often a live SSE stream sends a keep-alive comment when nothing happens.
    pub keep_alive: Duration,
    /// The `Retry-After` sent with `503` when the store is unavailable.
    pub retry_after: Duration,
    /// How many events a causation or correlation lookup scans per request (the store has no
    /// index on them); the response links to the next window when more is left.
    pub scan_window: u64,
    /// The bytes of rendered archived pages kept in memory (they never change).
    pub page_cache_bytes: usize,
    /// The path prefix the router is mounted under (`""` at the root), used in every link.
    pub base_path: String,
}

impl Default for FeedConfig {
    /// Pages of 100 positions, reads of at most 1,000 events, waits of at most 30 s.
    fn default() -> Self {
        Self {
            page_size: 100,
            max_limit: 1_000,
            max_wait: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            keep_alive: Duration::from_secs(15),
            retry_after: Duration::from_secs(2),
            scan_window: 10_000,
            page_cache_bytes: 32 << 20,
            base_path: String::new(),
        }
    }
}

impl FeedConfig {
    /// The same settings with pages of `page_size` positions (at least 1).
    pub fn with_page_size(mut self, page_size: u64) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The same settings, with links under `base_path` (`"/events-api"`, no trailing `/`).
    pub fn with_base_path(mut self, base_path: impl Into<String>) -> Self {
        self.base_path = base_path.into().trim_end_matches('/').to_owned();
        self
    }
}
