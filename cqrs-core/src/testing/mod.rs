//! The testing kit (feature `testing`): for users' aggregates and for store backends.
//!
//! - [`fixture`]: given events, when a command, then events or an error.
//! - [`properties`]: proptest helpers proving that replay rebuilds what was decided live.
//! - [`conformance`]: the store contract as code; every backend runs all of it.
//! - [`model`]: a reference model of the store for model-based tests of backends.
//! - [`reactor`]: given events of several aggregates, when an event, then these commands.
//! - [`toy`]: `Tally`, the small aggregate the framework's own tests share.

pub mod conformance;
pub mod fixture;
pub mod model;
pub mod properties;
pub mod reactor;
pub mod toy;

pub use fixture::AggregateFixture;
pub use proptest;
pub use reactor::ReactorFixture;
