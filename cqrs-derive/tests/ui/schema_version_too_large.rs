use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
enum Event {
    #[domain_event(schema_version = 4294967296)]
    ItemAdded { id: u32 },
}

fn main() {}
