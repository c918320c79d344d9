//! Event sourcing for Rust: aggregates as plain state, an event enum and `apply`; a repository
//! that replays streams and appends with optimistic concurrency; one store contract that
//! every backend (`cqrs-memory`, `cqrs-sqlite`, ...) implements and proves with the shared
//! conformance suite.
//!
//! ```
//! use cqrs_core::{Aggregate, DomainEvent, Repository};
//! use serde::{Deserialize, Serialize};
//!
//! // Stored under the variant name, "Incremented" (feature `derive`, on by default).
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
//! enum CounterEvent { Incremented { by: u32 } }
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("cannot increment by zero")]
//! struct ZeroStep;
//!
//! #[derive(Debug, Default)]
//! struct Counter { total: u64 }
//! impl Aggregate for Counter {
//!     const TYPE: &'static str = "Counter";
//!     type Command = u32;
//!     type Event = CounterEvent;
//!     type Error = ZeroStep;
//!     fn handle(&self, by: u32) -> Result<Vec<CounterEvent>, ZeroStep> {
//!         if by == 0 { return Err(ZeroStep) }
//!         Ok(vec![CounterEvent::Incremented { by }])
//!     }
//!     fn apply(&mut self, event: &CounterEvent) {
//!         match event { CounterEvent::Incremented { by } => self.total += u64::from(*by) }
//!     }
//! }
//! ```

// The derive's output names `::cqrs_core::DomainEvent` so that it works for users who depend
// on this crate alone; this alias lets the same path resolve inside it (its toy aggregate).
extern crate self as cqrs_core;

/// The attribute every [`EventHandler`], [`Consumer`] and store implementation needs,
/// re-exported so that applications do not add `async-trait` themselves.
pub use async_trait::async_trait;
/// `#[derive(DomainEvent)]` (feature `derive`, on by default): `event_type` from the variant
/// names, checked at compile time. It shares the trait's name, so one `use` brings both.
#[cfg(feature = "derive")]
pub use cqrs_derive::DomainEvent;

pub mod aggregate;
pub mod backend;
mod cache;
pub mod codec;
pub mod envelope;
pub mod handler;
pub mod log;
pub mod metadata;
pub mod parking;
pub mod reaction;
pub mod repository;
pub mod snapshot;
pub mod sources;
pub mod store;
pub mod subscription;
#[cfg(feature = "testing")]
pub mod testing;
mod trace;
pub mod tracking;
pub mod upcast;

pub use aggregate::{aggregate_id, category, is_stream_of, stream_id, Aggregate, DomainEvent};
pub use codec::{DecodeCause, DecodeError, EncodeError};
pub use envelope::{EventEnvelope, EventRef, NewEvent, RecordedEvent};
pub use handler::{EventHandler, EventOf, HandlerError, HandlerFailure, MultiEventHandler};
pub use log::{Direction, EventFilter, LogRead};
pub use metadata::Metadata;
pub use parking::{OnFailure, ParkedEvent, ParkingStore};
pub use reaction::{Reaction, Reactor, ReactorConsumer};
pub use repository::{Committed, Loaded, Repository, RepositoryError};
pub use snapshot::{Snapshot, SnapshotPolicy, SnapshotStore};
pub use sources::Sources;
pub use store::{
    visit_each, Appended, EventStore, ExpectedVersion, PositionWatch, StoreError, Visitor,
};
pub use subscription::{
    CheckpointStore, Consumer, HandlerConsumer, Lag, RetryPolicy, RunningSubscription,
    Subscription, SubscriptionError, SubscriptionProgress,
};
pub use tracking::{AppendBatch, TrackingStore};
pub use upcast::{RawEvent, UpcastError, Upcasters};
