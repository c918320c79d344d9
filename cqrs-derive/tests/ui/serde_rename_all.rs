use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[serde(rename_all = "snake_case")]
enum Event {
    ItemAdded { id: u32 },
}

fn main() {}
