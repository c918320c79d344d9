//! From the enum to its `DomainEvent` impl: one match arm per variant for the type and the
//! version, after every refusal was collected.

use crate::attr::DomainEventAttr;
use crate::serde_attr;
use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::{parse_quote, Data, DataEnum, DeriveInput, GenericParam, Path, WherePredicate};

/// The version of an event whose enum and variant say nothing, as the trait's default.
const DEFAULT_SCHEMA_VERSION: u32 = 1;

/// The impl for `input`, or every refusal found in it (so one build reports them all).
pub(crate) fn domain_event(input: &DeriveInput) -> syn::Result<TokenStream> {
    let data = match &input.data {
        Data::Enum(data) => data,
        Data::Struct(data) => return Err(not_an_enum(data.struct_token, &input.ident)),
        Data::Union(data) => return Err(not_an_enum(data.union_token, &input.ident)),
    };
    let mut refusals = Refusals::default();
    let serde = refusals.note(serde_attr::check_enum(&input.attrs));
    let enum_attr = refusals.note(DomainEventAttr::parse(&input.attrs));
    refusals.note(no_lifetimes(input));
    refusals.note(some_variants(input, data));
    let enum_version = enum_attr
        .as_ref()
        .and_then(|attr| attr.schema_version)
        .unwrap_or(DEFAULT_SCHEMA_VERSION);
    let cqrs_core: Path = enum_attr
        .and_then(|attr| attr.krate)
        .unwrap_or_else(|| parse_quote!(::cqrs_core));

    let mut type_arms = Vec::with_capacity(data.variants.len());
    let mut version_arms = Vec::with_capacity(data.variants.len());
    for variant in &data.variants {
        refusals.note(serde_attr::check_variant(&variant.attrs));
        let variant_attr = refusals.note(DomainEventAttr::parse(&variant.attrs));
        if let Some(attr) = &variant_attr {
            refusals.note(attr.refuse_crate_on_variant());
        }
        for field in &variant.fields {
            refusals.note(DomainEventAttr::refuse_on_field(&field.attrs));
        }
        let ident = &variant.ident;
        // serde names `r#type` "type": the raw marker is not part of the name.
        let name = ident.unraw().to_string();
        let version = variant_attr
            .and_then(|attr| attr.schema_version)
            .unwrap_or(enum_version);
        // `{ .. }` matches unit, tuple and struct variants alike.
        type_arms.push(quote!(Self::#ident { .. } => #name));
        version_arms.push(quote!(Self::#ident { .. } => #version));
    }
    refusals.into_result()?;

    let name = &input.ident;
    let mut generics = input.generics.clone();
    if let Some(serde) = serde.filter(|_| !generics.params.is_empty()) {
        let bounds = trait_bounds(&serde);
        generics.make_where_clause().predicates.push(bounds);
    }
    let (impl_generics, type_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #cqrs_core::DomainEvent for #name #type_generics #where_clause {
            fn event_type(&self) -> &'static str {
                match self {
                    #(#type_arms,)*
                }
            }

            fn schema_version(&self) -> u32 {
                match self {
                    #(#version_arms,)*
                }
            }
        }
    })
}

/// `DomainEvent`'s supertraits, as a bound on a generic enum: the impl then applies to
/// exactly the instances that can be events, without the user restating the bounds.
fn trait_bounds(serde: &Path) -> WherePredicate {
    parse_quote! {
        Self: #serde::Serialize
            + #serde::de::DeserializeOwned
            + ::core::clone::Clone
            + ::core::fmt::Debug
            + ::core::cmp::PartialEq
            + ::core::marker::Send
            + ::core::marker::Sync
            + 'static
    }
}

/// The refusal of a struct or a union, spanned on its keyword and name.
fn not_an_enum(keyword: impl quote::ToTokens, name: &syn::Ident) -> syn::Error {
    syn::Error::new_spanned(
        quote!(#keyword #name),
        "`#[derive(DomainEvent)]` needs an enum, whose variant names are the stored event \
         types: make this an enum with one variant per event, or implement DomainEvent by hand",
    )
}

/// Refuses an enum without variants: it has no event to name.
fn some_variants(input: &DeriveInput, data: &DataEnum) -> syn::Result<()> {
    if data.variants.is_empty() {
        let (keyword, name) = (data.enum_token, &input.ident);
        return Err(syn::Error::new_spanned(
            quote!(#keyword #name),
            "an event enum needs at least one variant: add one per event this aggregate records",
        ));
    }
    Ok(())
}

/// Events are stored and read back as owned values (`DeserializeOwned + 'static`), so a
/// borrowed field could never be filled from the store.
fn no_lifetimes(input: &DeriveInput) -> syn::Result<()> {
    for param in &input.generics.params {
        if let GenericParam::Lifetime(lifetime) = param {
            return Err(syn::Error::new_spanned(
                lifetime,
                "an event is read back from the store as an owned value, so it cannot borrow: \
                 remove the lifetime parameter and use owned fields (`String`, not `&str`)",
            ));
        }
    }
    Ok(())
}

/// Every refusal found so far, combined into one error.
#[derive(Default)]
struct Refusals(Option<syn::Error>);

impl Refusals {
    /// Keeps the value of `result`, or its error beside the others.
    fn note<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                match &mut self.0 {
                    Some(all) => all.combine(error),
                    None => self.0 = Some(error),
                }
                None
            }
        }
    }

    /// `Ok` when nothing was refused.
    fn into_result(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
