//! What is stored, and the SQL that stores and reads it: plain functions on a
//! `rusqlite::Connection`, run by whoever holds one (no threads, no async, no locks here).
//!
//! Writes run inside the transaction and savepoint their caller opened; none of them
//! commits.

pub(crate) mod checkpoints;
pub(crate) mod events;
pub(crate) mod parked;
pub(crate) mod schema;
pub(crate) mod snapshots;
