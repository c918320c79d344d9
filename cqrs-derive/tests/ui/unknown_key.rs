use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[domain_event(version = 2)]
enum Event {
    ItemAdded { id: u32 },
}

fn main() {}
