//! The configured mapping: `[providers.traits]` entries from trait name to JSON Pointers
//! (RFC 6901) into the merged claims (`/ptr`) or the provider's own API (`graph:/me/…`,
//! `graph:/organization/…`, `graph:/groups`, `users_api:/…`). The first pointer with a non-empty
//! value wins.
//!
//! One of the 25 traits overrides the provider default and still goes through the same
//! normalisation (a phone must be a valid number, a country code a real one, a time zone an
//! IANA name). Any other name is a custom trait: a string, number or boolean is kept as it is
//! (strings cleaned and capped), a list becomes a list of strings (groups, roles), an object is
//! skipped.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::defaults::{Custom, Raw, Sourced};
use super::pointer::lookup;
use super::sanitize::{self, MAX_TEXT_CHARS, MAX_URL_CHARS};
use super::{MappingInput, TraitSet};
use crate::config::{PointerSource, SourcedPointer};

/// Trait name → pointers, tried in order (checked when the configuration is read).
pub type TraitMapping = BTreeMap<String, Vec<String>>;

/// The most elements a custom list trait keeps (the Identify API's default `max_list_items`).
pub const MAX_LIST_ITEMS: usize = 50;

/// The value one configured pointer finds, and the provenance source it becomes:
/// `mapping:/ptr` for a claim, the pointer itself for a provider API (`graph:/me/department`).
fn resolve<'a>(input: &MappingInput<'a>, text: &str) -> Option<(Value, String)> {
    let sourced = SourcedPointer::parse(text).ok()?;
    let in_map = |map: Option<&'a Map<String, Value>>| lookup(map?, sourced.pointer).cloned();
    let value = match sourced.source {
        PointerSource::Claims => {
            return lookup(input.claims, sourced.pointer)
                .map(|v| (v.clone(), format!("mapping:{}", sourced.pointer)))
        }
        PointerSource::GraphMe => in_map(input.api.graph_me),
        PointerSource::GraphOrganization => in_map(input.api.graph_organization),
        PointerSource::UsersApi => in_map(input.api.users_api),
        PointerSource::GraphGroups => input
            .api
            .graph_groups
            .map(|ids| Value::Array(ids.iter().cloned().map(Value::String).collect())),
    }?;
    Some((value, text.to_owned()))
}

/// Texts in one value: a string or number, or for lists (phones) each string or number.
fn texts(value: &Value, list: bool, cap: usize, what: &str) -> Vec<String> {
    match value {
        Value::Array(items) if list => items
            .iter()
            .take(20)
            .filter_map(|v| sanitize::text(v, cap, true, what))
            .collect(),
        v => sanitize::text(v, cap, true, what).into_iter().collect(),
    }
}

/// A custom trait's value: a cleaned string, a number, a boolean or a list of cleaned strings
/// (numbers in a list become text; an empty list stays, so a stored list is replaced); `None`
/// for an empty string, null or an object.
fn custom_value(value: &Value, what: &str) -> Option<Value> {
    match value {
        Value::Bool(_) | Value::Number(_) => Some(value.clone()),
        Value::String(_) => sanitize::text(value, MAX_TEXT_CHARS, false, what).map(Value::String),
        Value::Array(items) => {
            let list: Vec<Value> = items
                .iter()
                .filter_map(|v| sanitize::text(v, MAX_TEXT_CHARS, true, what))
                .take(MAX_LIST_ITEMS)
                .map(Value::String)
                .collect();
            // An empty list is a value: "in no group" replaces the groups stored before.
            Some(Value::Array(list))
        }
        Value::Null => None,
        Value::Object(_) => {
            tracing::debug!(claim = what, "custom trait skipped: an object");
            None
        }
    }
}

/// Applies the configured mapping over the defaults, and collects the custom traits.
pub(super) fn apply_overrides(raw: &mut Raw, input: &MappingInput) {
    let mapping = input.mapping;
    for (name, pointers) in mapping {
        let Some(&known) = TraitSet::NAMES.iter().find(|n| **n == name.as_str()) else {
            let found = pointers.iter().find_map(|ptr| {
                let (value, source) = resolve(input, ptr)?;
                let value = custom_value(&value, &source)?;
                Some(Custom { value, source })
            });
            if let Some(custom) = found {
                raw.custom.insert(name.clone(), custom);
            }
            continue;
        };
        let name = known;
        let is_phone = name == "enrichment_phone";
        let cap = if name == "enrichment_avatar" {
            MAX_URL_CHARS
        } else {
            MAX_TEXT_CHARS
        };
        let found = pointers.iter().find_map(|ptr| {
            let (value, source) = resolve(input, ptr)?;
            let vals = texts(&value, is_phone, cap, &source);
            (!vals.is_empty()).then_some((source, vals))
        });
        let Some((source, mut vals)) = found else {
            continue;
        };
        if is_phone {
            raw.phones = vals
                .into_iter()
                .map(|v| Sourced::given(v, source.clone()))
                .collect();
            continue;
        }
        let value = Sourced::given(vals.swap_remove(0), source);
        match name {
            "enrichment_country_code" => raw.countries = vec![value.clone()],
            // A mapped country name also decides the code unless the code itself is mapped.
            "enrichment_country" if !mapping.contains_key("enrichment_country_code") => {
                raw.countries.insert(0, value.clone())
            }
            _ => {}
        }
        raw.values.insert(name, value);
    }
}
