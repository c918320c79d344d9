//! What every workload is given: the flags, the data dir, and the results the scripts must
//! give, folded in memory once before any store is measured.

use crate::args::Args;
use crate::script::EVENTS_PER_CART;
use std::path::Path;

/// What the scripts of carts `0..--carts` give when folded in memory, without any store.
pub struct Expected {
    /// Sum of `total_price` over the carts.
    pub checksum: i64,
    /// Sum of the quantities of every `ItemAdded` of those carts (the W4 decode check).
    pub added_units: u64,
}

/// The run's settings and expectations, shared by every workload.
pub struct Ctx<'a> {
    /// The flags.
    pub args: &'a Args,
    /// Where the SQLite files go.
    pub dir: &'a Path,
    /// What the checks compare with.
    pub expected: Expected,
}

impl Ctx<'_> {
    /// The events one pass of the script over every cart writes (W1's, or W2's).
    pub fn script_events(&self) -> u64 {
        u64::from(self.args.carts) * EVENTS_PER_CART
    }
}
