use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum Event {
    ItemAdded { id: u32 },
    #[serde(skip_deserializing)]
    Lost { id: u32 },
    #[serde(skip)]
    Gone,
}

fn main() {}
