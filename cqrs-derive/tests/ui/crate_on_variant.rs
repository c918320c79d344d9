use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum Event {
    #[domain_event(crate = "cqrs_core")]
    ItemAdded { id: u32 },
}

fn main() {}
