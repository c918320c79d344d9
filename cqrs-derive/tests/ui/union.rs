use cqrs_core::DomainEvent;

#[derive(DomainEvent)]
union Either {
    small: u8,
    large: u64,
}

fn main() {}
