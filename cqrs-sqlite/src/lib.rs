//! `SqliteStore`: the embedded default event store, one SQLite file on disk.
//!
//! - WAL journal, `synchronous` as a typed option ([`Synchronous`]: NORMAL by default,
//!   FULL for power-loss durability), and a busy timeout so that processes sharing a file
//!   queue for the write lock instead of failing with "database is locked".
//! - A versioned schema migrated on open: `UNIQUE(stream_id, version)`, `UNIQUE(event_id)`,
//!   positions never given twice (`AUTOINCREMENT`), triggers that refuse UPDATE and DELETE
//!   on stored events, and indexes by stream category and by event type (each in position
//!   order) for filtered reads of the log. Files carry [`APPLICATION_ID`]; opening reads a
//!   file before it writes anything, and refuses one that is newer, another application's
//!   or not an intact database ([`SqliteError`]) leaving it untouched.
//! - The writer keeps `recorded_at` from ever decreasing along positions, so the first
//!   position at an instant is a binary search over positions.
//! - Damaged rows are [`StoreError::Corrupt`](cqrs_core::StoreError::Corrupt), naming
//!   stream, version and position; so is an event a stream's reads can no longer find.
//! - Snapshots (`SnapshotStore`) in table `snapshots`, the latest per stream; subscription
//!   checkpoints (`CheckpointStore`) in table `checkpoints`.
//! - Read models in the same file ([`Projection`]): inline, in the append's transaction, or
//!   fed by a subscription with the checkpoint in the same transaction.
//! - One writer connection that commits concurrent appends together (group commit), each in
//!   its own savepoint, on the thread of the caller that finds it free (no hand-off to
//!   another thread); short reads on the caller's thread too, long pages on tokio's blocking
//!   pool, two connections at once, the next page read ahead.
//!
//! Inside, what is stored is kept apart from how it runs: `sql` holds the schema and every
//! statement as plain functions on a connection; `run` holds the writer, the read pool and
//! the paging, which run work they are given without knowing the schema; `store` is the one
//! module that joins the two.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cqrs_core::StoreError> {
//! use cqrs_sqlite::{SqliteOptions, SqliteStore, Synchronous};
//! let store = SqliteStore::open("app.db").await?;
//! let durable = SqliteStore::open_with(
//!     "ledger.db",
//!     SqliteOptions::new().synchronous(Synchronous::Full),
//! )
//! .await?;
//! # Ok(()) }
//! ```

mod buffer;
mod consumer;
mod error;
mod integer;
mod options;
mod page;
mod panics;
mod projection;
mod run;
mod sql;
mod store;
mod synchronous;

pub use consumer::ProjectionConsumer;
pub use error::SqliteError;
pub use options::SqliteOptions;
pub use projection::{MultiProjection, ProjectedEvent, Projection};
/// The rusqlite version projections are written against, so applications use the same one.
pub use rusqlite;
pub use sql::schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use store::SqliteStore;
pub use synchronous::Synchronous;
