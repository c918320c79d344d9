//! `PostgresStore`: the event store for applications that outgrow one machine, on
//! PostgreSQL, for several application servers sharing one database.
//!
//! - `tokio-postgres` with a `deadpool-postgres` pool, prepared statements, and pipelined
//!   statements in each append transaction. TLS is not supported yet (plain connections).
//! - Its own PostgreSQL schema ([`PostgresOptions::schema`], `cqrs` by default), so many
//!   stores and other applications can share a database; created and migrated on connect
//!   with the version recorded in table `schema_version`. A schema from a newer version,
//!   or holding another application's tables, is refused untouched ([`PostgresError`]).
//! - `UNIQUE(stream_id, version)`, `UNIQUE(event_id)`, triggers that refuse UPDATE, DELETE
//!   and TRUNCATE of stored events; payload and metadata stored as `text`, so they read back
//!   byte for byte; indexes by category and by event type (in position order) for filtered
//!   reads, and by time for `position_at`.
//! - A global order no reader can overrun: positions are given under an append lock held
//!   until commit, so they grow in commit order and every reader sees a prefix of the log
//!   (see `sql::append`). Positions are dense.
//! - One appender task per store commits the concurrent appends of its process together
//!   (group commit), each checked on its own.
//! - The append signal ([`EventStore::appends`](cqrs_core::EventStore::appends)) moves on
//!   this process's commits, on other processes' `NOTIFY`, and on a poll of the log's end.
//! - Damaged rows are [`StoreError::Corrupt`](cqrs_core::StoreError::Corrupt), naming
//!   stream, version and position; so is a stream whose versions are not 1..n.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cqrs_core::StoreError> {
//! use cqrs_postgres::{PostgresOptions, PostgresStore};
//! let store = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
//! let billing = PostgresStore::connect_with(
//!     PostgresOptions::new("postgres://app@db.internal/app").schema("billing").pool_size(16),
//! )
//! .await?;
//! # Ok(()) }
//! ```

mod consumer;
mod error;
mod options;
mod projection;
mod run;
mod sql;
mod store;

pub use consumer::ProjectionConsumer;
pub use error::PostgresError;
pub use options::{PostgresOptions, DEFAULT_SCHEMA};
pub use projection::{MultiProjection, ProjectedEvent, Projection};
pub use sql::schema::SCHEMA_VERSION;
pub use store::PostgresStore;
/// The driver version the store is built on.
pub use tokio_postgres;
