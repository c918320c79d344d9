//! The aggregate cache: recently used aggregates with their versions, bounded in entries.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

/// An aggregate state as of a stream version.
pub(crate) struct Cached<A> {
    pub state: A,
    pub version: u64,
}

/// A least-recently-used map from stream id to aggregate state.
///
/// Entries are taken out while a command runs and put back after, so two tasks never share
/// one state; a stale entry is harmless because every use reads the events after its
/// version first (and a conflicting append makes the command read them again).
pub(crate) struct AggregateCache<A> {
    capacity: usize,
    inner: Mutex<Lru<A>>,
}

struct Lru<A> {
    entries: HashMap<String, (Cached<A>, u64)>,
    by_use: BTreeMap<u64, String>,
    clock: u64,
}

impl<A> AggregateCache<A> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Lru {
                entries: HashMap::new(),
                by_use: BTreeMap::new(),
                clock: 0,
            }),
        }
    }

    /// Removes and returns the entry, if present.
    pub fn take(&self, stream_id: &str) -> Option<Cached<A>> {
        let mut lru = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (cached, used) = lru.entries.remove(stream_id)?;
        lru.by_use.remove(&used);
        Some(cached)
    }

    /// Stores the entry as the most recently used, evicting the least recently used one
    /// when full. An entry older than one already there (another task's) is dropped.
    pub fn put(&self, stream_id: &str, cached: Cached<A>) {
        let mut lru = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let lru = &mut *lru;
        if let Some((present, used)) = lru.entries.remove(stream_id) {
            lru.by_use.remove(&used);
            if present.version > cached.version {
                return self.insert(lru, stream_id, present);
            }
        }
        while lru.entries.len() >= self.capacity {
            let Some((_, oldest)) = lru.by_use.pop_first() else {
                break;
            };
            lru.entries.remove(&oldest);
        }
        self.insert(lru, stream_id, cached);
    }

    fn insert(&self, lru: &mut Lru<A>, stream_id: &str, cached: Cached<A>) {
        lru.clock += 1;
        lru.by_use.insert(lru.clock, stream_id.to_owned());
        lru.entries
            .insert(stream_id.to_owned(), (cached, lru.clock));
    }

    /// How many aggregates are cached.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let lru = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        lru.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: u64) -> Cached<u64> {
        Cached {
            state: version * 10,
            version,
        }
    }

    #[test]
    fn the_least_recently_used_entry_is_evicted() {
        let cache = AggregateCache::new(2);
        cache.put("a", entry(1));
        cache.put("b", entry(1));
        let a = cache.take("a").unwrap();
        cache.put("a", a); // "a" is now the most recent
        cache.put("c", entry(1));
        assert_eq!(cache.len(), 2);
        assert!(cache.take("b").is_none(), "b was least recently used");
        assert!(cache.take("a").is_some());
        assert!(cache.take("c").is_some());
    }

    #[test]
    fn taking_removes_and_an_older_state_never_replaces_a_newer_one() {
        let cache = AggregateCache::new(4);
        cache.put("a", entry(5));
        cache.put("a", entry(3));
        let taken = cache.take("a").unwrap();
        assert_eq!((taken.version, taken.state), (5, 50));
        assert!(cache.take("a").is_none());
    }
}
