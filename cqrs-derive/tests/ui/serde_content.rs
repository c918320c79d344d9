use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

// Adjacently tagged: the refusal points at `content` on its own line, as it would at `tag`.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[serde(content = "data")]
#[serde(tag = "type")]
enum Event {
    ItemAdded { id: u32 },
}

fn main() {}
