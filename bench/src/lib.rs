#![doc = include_str!("../README.md")]

pub mod args;
mod backend;
mod bulk;
mod check;
mod context;
pub mod error;
pub mod limits;
mod p1;
pub mod report;
mod rss;
mod run;
pub mod script;
mod timing;
mod w1;
mod w2;
mod w3;
mod w4;

pub use backend::Backend;
pub use run::run;
