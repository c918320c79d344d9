use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[serde(untagged)]
enum Event {
    ItemAdded { id: u32 },
}

fn main() {}
