use cqrs_core::DomainEvent;

#[derive(DomainEvent)]
struct Opened {
    id: u32,
}

fn main() {}
