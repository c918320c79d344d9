use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
enum Event {
    #[serde(rename = "item_added")]
    ItemAdded { id: u32 },
}

fn main() {}
