use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

// One build reports every refusal, not only the first.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[serde(rename_all = "snake_case")]
#[domain_event(schema_version = 0)]
enum Event {
    #[serde(rename = "added")]
    ItemAdded { id: u32 },
    #[domain_event(shema_version = 2)]
    ItemRemoved { id: u32 },
}

fn main() {}
