use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[serde(deny_unknown_fields, tag = "type")]
enum Event {
    ItemAdded { id: u32 },
}

fn main() {}
