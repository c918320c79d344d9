//! [`PageCache`]: rendered archived pages kept in memory, bounded in bytes. An archived page
//! never changes, so a cached copy is never stale; the oldest copies go first when full.

use axum::body::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// What identifies one rendered page: its number, its filter's query and who asked.
pub(crate) type PageKey = (u64, String, Option<String>);

/// Rendered archived pages, at most `capacity` bytes of them.
#[derive(Debug)]
pub(crate) struct PageCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pages: HashMap<PageKey, Bytes>,
    order: VecDeque<PageKey>,
    bytes: usize,
}

impl PageCache {
    /// An empty cache holding at most `capacity` bytes (0: caches nothing).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }

    /// The page rendered under `key`, if kept.
    pub(crate) fn get(&self, key: &PageKey) -> Option<Bytes> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        inner.pages.get(key).cloned()
    }

    /// Keeps `page` under `key`, dropping the oldest pages to stay within capacity.
    pub(crate) fn put(&self, key: PageKey, page: Bytes) {
        if page.len() > self.capacity {
            return;
        }
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if inner.pages.contains_key(&key) {
            return;
        }
        while inner.bytes + page.len() > self.capacity {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(dropped) = inner.pages.remove(&oldest) {
                inner.bytes -= dropped.len();
            }
        }
        inner.bytes += page.len();
        inner.order.push_back(key.clone());
        inner.pages.insert(key, page);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(page: u64) -> PageKey {
        (page, String::new(), None)
    }

    #[test]
    fn keeps_pages_within_its_bytes_dropping_the_oldest() {
        let cache = PageCache::new(10);
        cache.put(key(1), Bytes::from_static(b"aaaa"));
        cache.put(key(2), Bytes::from_static(b"bbbb"));
        cache.put(key(3), Bytes::from_static(b"cccc"));
        assert_eq!(cache.get(&key(1)), None, "the oldest went first");
        assert_eq!(cache.get(&key(3)).as_deref(), Some(&b"cccc"[..]));
        cache.put(key(4), Bytes::from_static(b"too large for it"));
        assert_eq!(cache.get(&key(4)), None);
        assert!(
            cache.get(&key(2)).is_some(),
            "an oversized page evicts nothing"
        );
    }
}
