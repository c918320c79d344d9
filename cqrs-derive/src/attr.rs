//! `#[domain_event(schema_version = N)]`, on the enum or a variant, and
//! `#[domain_event(crate = "path")]`, on the enum: the derive's own attribute.

use syn::{Attribute, LitInt, LitStr, Path};

/// The attribute's name, as it is declared on the derive.
const NAME: &str = "domain_event";

/// What `#[domain_event(...)]` set on one enum or variant; `None` where it said nothing.
#[derive(Default)]
pub(crate) struct DomainEventAttr {
    /// `schema_version = N`: the version written for the variant(s) it covers.
    pub schema_version: Option<u32>,
    /// `crate = "path"`: where `cqrs-core` is, for a crate that renamed the dependency.
    pub krate: Option<Path>,
}

impl DomainEventAttr {
    /// Reads every `#[domain_event(...)]` among `attrs`, refusing unknown and repeated keys.
    pub(crate) fn parse(attrs: &[Attribute]) -> syn::Result<Self> {
        let mut parsed = Self::default();
        for attr in attrs.iter().filter(|attr| attr.path().is_ident(NAME)) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("crate") {
                    if parsed.krate.is_some() {
                        return Err(meta.error("`crate` is given twice here: keep one"));
                    }
                    parsed.krate = Some(meta.value()?.parse::<LitStr>()?.parse()?);
                    return Ok(());
                }
                if !meta.path.is_ident("schema_version") {
                    return Err(meta.error(
                        "unknown `domain_event` key: the keys are `schema_version = N` and, on \
                         the enum, `crate = \"path\"`",
                    ));
                }
                if parsed.schema_version.is_some() {
                    return Err(meta.error("`schema_version` is given twice here: keep one"));
                }
                parsed.schema_version = Some(schema_version(meta.value()?)?);
                Ok(())
            })?;
        }
        Ok(parsed)
    }

    /// Refuses `crate = "..."` on a variant: the path is the enum's, one for every arm.
    pub(crate) fn refuse_crate_on_variant(&self) -> syn::Result<()> {
        match &self.krate {
            Some(path) => Err(syn::Error::new_spanned(
                path,
                "`crate = \"...\"` names where cqrs-core is for the whole enum: put it on the \
                 enum, not on a variant",
            )),
            None => Ok(()),
        }
    }

    /// Refuses `#[domain_event]` where it means nothing (on a field), rather than ignore it.
    pub(crate) fn refuse_on_field(attrs: &[Attribute]) -> syn::Result<()> {
        match attrs.iter().find(|attr| attr.path().is_ident(NAME)) {
            Some(attr) => Err(syn::Error::new_spanned(
                attr,
                "`#[domain_event]` goes on the enum or on a variant, not on a field: move it",
            )),
            None => Ok(()),
        }
    }
}

/// A version as the codec stores it: an integer literal from 1 to `u32::MAX`.
fn schema_version(value: syn::parse::ParseStream) -> syn::Result<u32> {
    const WHAT: &str = "`schema_version` takes an integer literal from 1 to 4294967295 (u32), \
                        like `schema_version = 2`";
    if !value.peek(LitInt) {
        return Err(value.error(WHAT));
    }
    let literal: LitInt = value.parse()?;
    match literal.base10_parse::<u32>() {
        Ok(0) => Err(syn::Error::new(
            literal.span(),
            "schema versions start at 1: use `schema_version = 1` or higher",
        )),
        Ok(version) => Ok(version),
        Err(_) => Err(syn::Error::new(literal.span(), WHAT)),
    }
}
