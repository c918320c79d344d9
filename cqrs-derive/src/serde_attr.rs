//! The serde attributes that would make the stored event type differ from the variant name,
//! refused; every other serde attribute is passed over.
//!
//! The codec stores `{"Variant": payload}` as the type `Variant` in its own column and the
//! payload beside it, and rebuilds the tagged form to read it back. That holds only while the
//! enum is externally tagged (no `tag`, `content`, `untagged`) and serde's name for each
//! variant is the variant's own (no `rename`, `rename_all`).

use proc_macro2::{TokenStream, TokenTree};
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitStr, Path};

/// Why a serde key on the enum cannot be derived for, and what to do; `None` for keys that
/// leave the stored names and the tagging alone.
fn enum_refusal(key: &str) -> Option<&'static str> {
    Some(match key {
        "rename_all" => {
            "`#[serde(rename_all)]` renames every variant, but the stored event type is the \
             variant name: remove `rename_all`, or implement DomainEvent by hand to map the names"
        }
        "tag" | "content" => {
            "`#[serde(tag)]` and `#[serde(content)]` move the variant name into the payload, but \
             the store keeps it in its own column and needs serde's default (externally tagged) \
             form: remove `tag` and `content`"
        }
        "untagged" => {
            "`#[serde(untagged)]` stores no variant name, so a stored event could not be read \
             back by its type: remove `untagged`"
        }
        _ => return None,
    })
}

/// As [`enum_refusal`], for a key on one variant.
fn variant_refusal(key: &str) -> Option<&'static str> {
    Some(match key {
        "rename" => {
            "`#[serde(rename)]` changes the variant's stored name, but the stored event type is \
             the variant name: remove `rename` (to rename a variant, rename it in Rust and keep \
             reading old events with `#[serde(alias = \"OldName\")]`), or implement DomainEvent \
             by hand to map the names"
        }
        "untagged" => {
            "`#[serde(untagged)]` stores this variant without its name, so it could not be read \
             back by its type: remove `untagged`"
        }
        "skip" | "skip_deserializing" | "skip_serializing" => {
            "`#[serde(skip)]` on a variant makes its events impossible to store or to read back \
             (appended, then every load of the stream fails): remove it; to stop recording an \
             event, stop returning it from `handle`"
        }
        _ => return None,
    })
}

/// Checks the enum's own serde attributes; gives the path of serde that the generated bounds
/// name (`#[serde(crate = "...")]`, else `::serde`).
pub(crate) fn check_enum(attrs: &[Attribute]) -> syn::Result<Path> {
    let mut serde: Path = syn::parse_quote!(::serde);
    for_each_key(attrs, |meta, key| {
        if let Some(refusal) = enum_refusal(key) {
            return Err(refuse(meta, refusal));
        }
        if key == "crate" {
            serde = meta.value()?.parse::<LitStr>()?.parse()?;
            return Ok(());
        }
        skip_value(&meta)
    })?;
    Ok(serde)
}

/// Checks one variant's serde attributes.
pub(crate) fn check_variant(attrs: &[Attribute]) -> syn::Result<()> {
    for_each_key(attrs, |meta, key| match variant_refusal(key) {
        Some(refusal) => Err(refuse(meta, refusal)),
        None => skip_value(&meta),
    })
}

/// Calls `f` with each key of every `#[serde(...)]` among `attrs`.
fn for_each_key(
    attrs: &[Attribute],
    mut f: impl FnMut(ParseNestedMeta, &str) -> syn::Result<()>,
) -> syn::Result<()> {
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            // Keys are single words (`crate` among them); a longer path is serde's to refuse.
            let key = meta.path.get_ident().map(ToString::to_string);
            match key {
                Some(key) => f(meta, &key),
                None => skip_value(&meta),
            }
        })?;
    }
    Ok(())
}

/// An error spanned on the key and its value (`rename = "x"`, `rename(serialize = "x")`).
fn refuse(meta: ParseNestedMeta, message: &str) -> syn::Error {
    let path = &meta.path;
    let value = rest_of_key(&meta).unwrap_or_default();
    syn::Error::new_spanned(quote!(#path #value), message)
}

/// Passes over a key's value, whatever its form (`= "..."`, `(...)` or none).
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    rest_of_key(meta).map(drop)
}

/// The tokens after a key, up to the comma that ends it.
fn rest_of_key(meta: &ParseNestedMeta) -> syn::Result<TokenStream> {
    let mut rest = TokenStream::new();
    while !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
        rest.extend([meta.input.parse::<TokenTree>()?]);
    }
    Ok(rest)
}
