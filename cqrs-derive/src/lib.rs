//! `#[derive(DomainEvent)]`, re-exported by `cqrs-core` (feature `derive`, on by default).
//!
//! The store keeps an event's type in its own column, and that type must be the name serde
//! writes for the variant. Written by hand, `event_type` is one match arm per variant and a
//! string that a typo breaks at the first append; derived, it is the variant name, and the
//! serde attributes that would make the two differ are refused when the crate is built.

use proc_macro::TokenStream;

mod attr;
mod expand;
mod serde_attr;

/// Implements `cqrs_core::DomainEvent` for an event enum: `event_type` returns the variant's
/// name, which is the name serde writes for it.
///
/// ```
/// use cqrs_core::DomainEvent;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
/// #[domain_event(schema_version = 2)] // every variant's, unless it says otherwise
/// enum CartEvent {
///     Opened,
///     ItemAdded { sku: String, quantity: u32 },
///     #[domain_event(schema_version = 3)]
///     PriceChanged(String, i64),
/// }
///
/// let added = CartEvent::ItemAdded { sku: "a-1".into(), quantity: 2 };
/// assert_eq!((added.event_type(), added.schema_version()), ("ItemAdded", 2));
/// let changed = CartEvent::PriceChanged("a-1".into(), 120);
/// assert_eq!((changed.event_type(), changed.schema_version()), ("PriceChanged", 3));
/// ```
///
/// `#[domain_event(schema_version = N)]` goes on the enum, on a variant, or on both (the
/// variant's wins); without it the version is 1. `N` is an integer literal from 1 to
/// `u32::MAX`. Type parameters are allowed: the impl applies where the enum meets
/// `DomainEvent`'s bounds (serde's path is taken from `#[serde(crate = "...")]` if set).
///
/// A crate that renamed its dependency on `cqrs-core` says where it is with
/// `#[domain_event(crate = "path")]` on the enum (the generated impl names `::cqrs_core`
/// otherwise).
///
/// Refused, each with a message saying what to do instead: anything but an enum with at least
/// one variant; lifetime parameters; `#[serde(rename_all, tag, content, untagged)]` on the
/// enum; `#[serde(rename, untagged, skip, skip_serializing, skip_deserializing)]` on a
/// variant; and `#[domain_event]` with an unknown or repeated key, a bad version, `crate` on a
/// variant, or on a field. `#[serde(alias)]` is fine: it only widens what
/// deserializes, so a renamed variant can keep reading events stored under its old name. So is
/// `#[serde(rename)]` on the enum itself, which JSON never writes. When the stored names must
/// differ from the variant names, implement `DomainEvent` by hand.
#[proc_macro_derive(DomainEvent, attributes(domain_event))]
pub fn derive_domain_event(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::domain_event(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
