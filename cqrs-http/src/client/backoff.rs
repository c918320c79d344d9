//! [`Backoff`]: how a follower waits between failed attempts: doubling, capped, jittered so
//! that many followers of one restarted server do not come back in step.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// `attempts` tries in a row at most; after the n-th failure waits a random time between
/// half and all of `first * 2^(n-1)` (at most `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failed attempts in a row before the follower gives up (at least 1).
    pub attempts: u32,
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 30 attempts, from 100 ms up to 5 s: rides out a server restart of two minutes or so.
    fn default() -> Self {
        Self {
            attempts: 30,
            first: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The wait after `failures` failures in a row (1 for the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        let full = self.first.saturating_mul(1 << doublings).min(self.max);
        let half = full / 2;
        half + half.mul_f64(random_unit())
    }
}

/// A number in `[0, 1)`, from the standard library's randomly keyed hasher (no dependency
/// for a jitter).
fn random_unit() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    // The top 53 bits as a fraction: exact in an f64.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_below_each() {
        let backoff = Backoff {
            attempts: 5,
            first: Duration::from_millis(100),
            max: Duration::from_millis(350),
        };
        for (failures, full) in [(1, 100), (2, 200), (3, 350), (9, 350), (u32::MAX, 350)] {
            let full = Duration::from_millis(full);
            let delay = backoff.delay(failures);
            assert!(delay >= full / 2 && delay <= full, "{failures}: {delay:?}");
        }
        let delays: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| backoff.delay(3)).collect();
        assert!(delays.len() > 1, "jittered: {delays:?}");
    }
}
