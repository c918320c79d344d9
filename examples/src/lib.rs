//! Runnable example domains of the framework: the cart (also what the benchmark runs), the
//! "minimum CQRS" orders (and the sales read model a reporting context builds from their feed
//! over HTTP), library lending and user onboarding (aggregates kept consistent by
//! subscriptions), bank transfers (a process manager across aggregates, exactly once), the
//! shipping context that hears the orders through NATS JetStream, and demos that run them on
//! any event store.

pub mod bank;
pub mod cart;
pub mod demo;
pub mod library;
pub mod onboarding;
pub mod order;
pub mod sales;
pub mod shipping;

/// The README's Rust blocks, compiled and run as doctests so the quick start cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
