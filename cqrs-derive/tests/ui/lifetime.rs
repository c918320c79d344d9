use cqrs_core::DomainEvent;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, DomainEvent)]
enum Borrowed<'a> {
    Named { name: &'a str },
}

fn main() {}
