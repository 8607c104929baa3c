//! The configured mapping: `[providers.traits]` entries from trait name to JSON Pointers
//! (RFC 6901) into the merged claims. The first pointer with a non-empty value wins and overrides
//! the provider default; the value still goes through the same normalisation (a phone must be a
//! valid number, a country code a real one, a time zone an IANA name).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::defaults::{Raw, Sourced};
use super::sanitize::{self, MAX_TEXT_CHARS, MAX_URL_CHARS};
use super::TraitSet;

/// Trait name → JSON Pointers into the merged claims, tried in order.
pub type TraitMapping = BTreeMap<String, Vec<String>>;

/// Checks a configured mapping at start-up. The error names the unknown trait or the bad pointer.
pub fn validate_mapping(m: &TraitMapping) -> Result<(), String> {
    for (name, pointers) in m {
        if !TraitSet::is_known(name) {
            return Err(format!(
                "unknown trait `{name}` in the trait mapping; known traits are enrichment_first_name … enrichment_active_at"
            ));
        }
        if pointers.is_empty() {
            return Err(format!("trait `{name}`: no claim path given"));
        }
        for p in pointers {
            if !is_valid_pointer(p) {
                return Err(format!(
                    "trait `{name}`: `{p}` is not a JSON Pointer (RFC 6901): it must be empty or start with '/', and '~' must be followed by 0 or 1"
                ));
            }
        }
    }
    Ok(())
}

fn is_valid_pointer(p: &str) -> bool {
    if !(p.is_empty() || p.starts_with('/')) {
        return false;
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

/// Resolves a JSON Pointer against a claims object without cloning it. The empty pointer (the
/// whole object) and malformed pointers resolve to nothing.
pub(super) fn lookup<'a>(map: &'a Map<String, Value>, ptr: &str) -> Option<&'a Value> {
    let rest = ptr.strip_prefix('/')?;
    let (head, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let key = head.replace("~1", "/").replace("~0", "~");
    let v = map.get(&key)?;
    if tail.is_empty() {
        Some(v)
    } else {
        v.pointer(tail)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validate_mapping_names_the_unknown_trait() {
        let m: TraitMapping =
            [("enrichment_shoe_size".to_owned(), vec!["/shoe".to_owned()])].into();
        let err = validate_mapping(&m).unwrap_err();
        assert!(err.contains("enrichment_shoe_size"), "{err}");
    }

    #[test]
    fn validate_mapping_rejects_bad_pointers_naming_trait_and_pointer() {
        for bad in ["title", "/a~2b", "/trailing~"] {
            let m: TraitMapping = [(
                "enrichment_employment_title".to_owned(),
                vec![bad.to_owned()],
            )]
            .into();
            let err = validate_mapping(&m).unwrap_err();
            assert!(
                err.contains("enrichment_employment_title") && err.contains(bad),
                "{err}"
            );
        }
        let ok: TraitMapping = [(
            "enrichment_employment_title".to_owned(),
            vec!["/custom/job~1title".to_owned(), "".to_owned()],
        )]
        .into();
        assert_eq!(validate_mapping(&ok), Ok(()));
    }

    #[test]
    fn lookup_follows_rfc6901_escapes() {
        let claims = json!({"a/b": {"c~d": "x"}, "list": ["p", "q"]});
        let map = claims.as_object().unwrap();
        assert_eq!(lookup(map, "/a~1b/c~0d"), Some(&json!("x")));
        assert_eq!(lookup(map, "/list/1"), Some(&json!("q")));
        assert_eq!(lookup(map, ""), None);
        assert_eq!(lookup(map, "/missing"), None);
    }
}
