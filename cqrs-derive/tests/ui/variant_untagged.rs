use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
enum Event {
    ItemAdded { id: u32 },
    #[serde(untagged)]
    Other(String),
}

fn main() {}
