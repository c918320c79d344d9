use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[domain_event(schema_version = 0)]
enum Event {
    ItemAdded { id: u32 },
}

fn main() {}
