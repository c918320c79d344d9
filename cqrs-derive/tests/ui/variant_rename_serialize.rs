use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
enum Event {
    #[serde(alias = "Added", rename(serialize = "Added"))]
    ItemAdded { id: u32 },
}

fn main() {}
