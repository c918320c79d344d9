//! The event log relayed to NATS JetStream, and a JetStream source for other bounded
//! contexts.
//!
//! - [`relay`]: the global log is the outbox. A [`Relay`] publishes every event of any store
//!   implementing `EventStore + CheckpointStore` to a JetStream stream, on subject
//!   `<prefix>.<aggregate type>.<stream id>`, payload unchanged, envelope in headers
//!   ([`message`]). Never published before it is stored, never lost, never published twice.
//! - [`broker`]: what the relay needs of a broker; [`jetstream`] implements it.
//! - [`skip`]: the recorded operator action for an event the broker refuses for good.
//! - [`inbound`]: another context's side. A JetStream durable consumer feeds an
//!   [`InboundReactor`], which decodes events into its own types (by type name and schema
//!   version, with upcasters) and issues commands on its own aggregates, committed with the
//!   JetStream sequence as its checkpoint in one transaction (`TrackingStore`): exactly once.

/// The NATS client this crate is built on, for connecting and for JetStream administration.
pub use async_nats;

pub mod broker;
pub mod inbound;
pub mod jetstream;
pub mod message;
pub mod relay;
pub mod skip;

pub use inbound::{Inbound, InboundConfig, InboundError, InboundReactor, RunningInbound};
pub use relay::{Relay, RelayConfig, RelayError, RunningRelay};
pub use skip::{skip_refused, skip_refused_on};
