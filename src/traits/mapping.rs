//! The configured mapping: `[providers.traits]` entries from trait name to JSON Pointers
//! (RFC 6901) into the merged claims. The first pointer with a non-empty value wins and overrides
//! the provider default; the value still goes through the same normalisation (a phone must be a
//! valid number, a country code a real one, a time zone an IANA name).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::defaults::{Raw, Sourced};
use super::pointer::lookup;
use super::sanitize::{self, MAX_TEXT_CHARS, MAX_URL_CHARS};
use super::TraitSet;

/// Trait name → JSON Pointers into the merged claims, tried in order (checked when the
/// configuration is read).
pub type TraitMapping = BTreeMap<String, Vec<String>>;

/// Texts at one pointer: a string or number, or for lists (phones) each string or number.
fn values_at(claims: &Map<String, Value>, ptr: &str, list: bool, cap: usize) -> Vec<String> {
    let what = format!("mapping:{ptr}");
    match lookup(claims, ptr) {
        Some(Value::Array(items)) if list => items
            .iter()
            .take(20)
            .filter_map(|v| sanitize::text(v, cap, true, &what))
            .collect(),
        Some(v) => sanitize::text(v, cap, true, &what).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Applies the configured mapping over the defaults.
pub(super) fn apply_overrides(raw: &mut Raw, claims: &Map<String, Value>, mapping: &TraitMapping) {
    for (name, pointers) in mapping {
        let Some(&name) = TraitSet::NAMES.iter().find(|n| **n == name.as_str()) else {
            tracing::debug!(trait_name = %name, "mapping entry skipped: unknown trait");
            continue;
        };
        let is_phone = name == "enrichment_phone";
        let cap = if name == "enrichment_avatar" {
            MAX_URL_CHARS
        } else {
            MAX_TEXT_CHARS
        };
        let found = pointers.iter().find_map(|ptr| {
            let vals = values_at(claims, ptr, is_phone, cap);
            (!vals.is_empty()).then(|| (format!("mapping:{ptr}"), vals))
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
