//! Panics in code the store runs on behalf of others (projections, write jobs): caught in
//! one place and turned into errors, and the locks a panic may leave poisoned taken anyway.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

/// What a caught panic said, for the error that takes its place.
#[derive(Debug)]
pub(crate) struct Panic(String);

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs `work`, turning a panic into an `Err`.
///
/// A panic must not unwind through the caller committing a group of writes: it would strand
/// the jobs queued behind it. Unwind safety is asserted because whatever `work` was changing
/// when it panicked is thrown away by the caller (a write job's savepoint is rolled back).
pub(crate) fn catch<T>(work: impl FnOnce() -> T) -> Result<T, Panic> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|payload| Panic(message(payload.as_ref())))
}

/// The text `panic!` was given, when it was given one.
fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Locks `mutex`, poisoned or not. Every lock of this crate guards data that stays
/// consistent when a holder panics (queues, pools, a connection whose open transaction is
/// rolled back before reuse), so poisoning carries no information worth failing for.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Like [`lock`], but `None` at once if another thread holds the lock.
pub(crate) fn try_lock<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_carrying_its_message() {
        assert_eq!(catch(|| 7).unwrap(), 7);
        let text = catch(|| panic!("the beast")).unwrap_err().to_string();
        assert_eq!(text, "the beast");
        let formatted = catch(|| panic!("number {}", 666)).unwrap_err().to_string();
        assert_eq!(formatted, "number 666");
        let silent = catch(|| std::panic::panic_any(3)).unwrap_err().to_string();
        assert_eq!(silent, "a panic without a message");
    }

    #[test]
    fn a_poisoned_lock_is_still_taken() {
        let mutex = Mutex::new(1);
        let _ = catch(|| {
            let _guard = mutex.lock().unwrap();
            panic!("poison it");
        });
        assert!(mutex.is_poisoned());
        *lock(&mutex) += 1;
        assert_eq!(*try_lock(&mutex).unwrap(), 2);
        let held = lock(&mutex);
        assert!(try_lock(&mutex).is_none());
        drop(held);
    }
}
