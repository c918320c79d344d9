use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

const V2: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
enum Event {
    #[domain_event(schema_version = "2")]
    ItemAdded { id: u32 },
    #[domain_event(schema_version = -1)]
    ItemRemoved { id: u32 },
    #[domain_event(schema_version = V2)]
    ItemMoved { id: u32 },
}

fn main() {}
