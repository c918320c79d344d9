use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
enum Event {
    ItemAdded {
        #[domain_event(schema_version = 2)]
        id: u32,
    },
}

fn main() {}
