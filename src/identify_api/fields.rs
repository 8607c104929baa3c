//! Field checks of one identify object: identifiers, flat traits, nested context, names and
//! string lengths. Each refusal names the field (`traits.plan`, `context.device.id`).

use serde_json::{Map, Value};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::error::ApiError;
use crate::config::IdentifyApiSettings;

/// Unicode's `Bidi_Control` characters (a fixed set of twelve). In an identifier they make it
/// display as something it is not (`user\u{202E}nimda` shows as `useradmin`).
const BIDI_CONTROLS: [char; 12] = [
    '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

/// A character that shows nothing: white space, a format character (zero-width space and
/// joiners, the byte-order mark, soft hyphen, tags), and the other default-ignorable ones
/// that are not format characters (variation selectors, Hangul fillers, the grapheme joiner).
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.general_category() == GeneralCategory::Format
        || matches!(c,
            '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}'
            | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FFA0}' | '\u{E0100}'..='\u{E01EF}')
}

/// A non-empty identifier of at most `max` characters, without control or bidirectional
/// control characters, not starting with a byte-order mark, with something visible in it.
pub(super) fn check_id(field: &str, id: &str, max: usize) -> Result<(), ApiError> {
    if id.trim().is_empty() {
        return Err(ApiError::invalid(format!("`{field}` must not be empty")));
    }
    if id.chars().count() > max {
        return Err(ApiError::invalid(format!(
            "`{field}` is longer than {max} characters"
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "`{field}` must not contain control characters"
        )));
    }
    if id.chars().any(|c| BIDI_CONTROLS.contains(&c)) {
        return Err(ApiError::invalid(format!(
            "`{field}` must not contain bidirectional control characters (such as U+202E): \
             they make it display as something else"
        )));
    }
    if id.starts_with('\u{FEFF}') {
        return Err(ApiError::invalid(format!(
            "`{field}` must not start with a byte-order mark (U+FEFF)"
        )));
    }
    if id.chars().all(is_invisible) {
        return Err(ApiError::invalid(format!(
            "`{field}` must contain a visible character, not only invisible ones (such as U+200B)"
        )));
    }
    Ok(())
}

/// Traits are a flat object: string, number, boolean, null (remove) or a list of strings.
pub(super) fn check_traits(
    field: &str,
    value: Value,
    s: &IdentifyApiSettings,
) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(traits) = value else {
        return Err(ApiError::invalid(format!(
            "`{field}` must be a JSON object of trait names to values, not {}",
            kind(&value)
        )));
    };
    if traits.len() > s.max_traits {
        return Err(ApiError::invalid(format!(
            "`{field}` has {} traits; at most {}",
            traits.len(),
            s.max_traits
        )));
    }
    for (name, v) in &traits {
        check_key(field, name, s)?;
        let at = format!("{field}.{}", clip(name));
        match v {
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
            Value::String(text) => check_string(&at, text, s)?,
            Value::Array(items) => {
                if items.len() > s.max_list_items {
                    return Err(ApiError::invalid(format!(
                        "`{at}` has {} elements; at most {}",
                        items.len(),
                        s.max_list_items
                    )));
                }
                for item in items {
                    match item {
                        Value::String(text) => check_string(&at, text, s)?,
                        other => {
                            return Err(ApiError::invalid(format!(
                                "`{at}` must be a list of strings; it contains {}",
                                kind(other)
                            )))
                        }
                    }
                }
            }
            Value::Object(_) => {
                return Err(ApiError::invalid(format!(
                    "`{at}` must be a string, number, boolean, null or a list of strings, not an object"
                )))
            }
        }
    }
    Ok(traits)
}

/// Context may nest, up to `max_context_depth` levels.
pub(super) fn check_nested(
    at: &str,
    value: &Value,
    depth: usize,
    s: &IdentifyApiSettings,
) -> Result<(), ApiError> {
    match value {
        Value::Object(map) => {
            if depth > s.max_context_depth {
                return Err(ApiError::invalid(format!(
                    "`{at}` nests deeper than {} levels",
                    s.max_context_depth
                )));
            }
            for (k, v) in map {
                check_key(at, k, s)?;
                check_nested(&format!("{at}.{}", clip(k)), v, depth + 1, s)?;
            }
        }
        Value::Array(items) => {
            if depth > s.max_context_depth {
                return Err(ApiError::invalid(format!(
                    "`{at}` nests deeper than {} levels",
                    s.max_context_depth
                )));
            }
            for v in items {
                check_nested(at, v, depth + 1, s)?;
            }
        }
        Value::String(text) => check_string(at, text, s)?,
        _ => {}
    }
    Ok(())
}

pub(super) fn check_key(at: &str, key: &str, s: &IdentifyApiSettings) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::invalid(format!("`{at}` has an empty name")));
    }
    if key.chars().count() > s.max_key_chars {
        return Err(ApiError::invalid(format!(
            "`{at}` has a name longer than {} characters: `{}…`",
            s.max_key_chars,
            clip(key)
        )));
    }
    Ok(())
}

pub(super) fn check_string(at: &str, text: &str, s: &IdentifyApiSettings) -> Result<(), ApiError> {
    if text.chars().count() > s.max_string_chars {
        return Err(ApiError::invalid(format!(
            "`{at}` is longer than {} characters",
            s.max_string_chars
        )));
    }
    Ok(())
}

/// A name cut to 40 characters for a message.
pub(super) fn clip(name: &str) -> String {
    name.chars().take(40).collect()
}

/// "a string", "an array", … for messages.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::check_id;

    #[test]
    fn identifiers_that_display_as_something_else_or_as_nothing_are_refused() {
        let refused = [
            ("user\u{202E}nimda", "bidirectional"),
            ("\u{2067}u1", "bidirectional"),
            ("u1\u{200F}", "bidirectional"),
            ("\u{FEFF}user123", "byte-order mark"),
            ("\u{200B}", "visible"),
            ("\u{200B}\u{200D}\u{2060}", "visible"),
            ("\u{3164}\u{FE0F}", "visible"),
            (" \u{00AD} ", "visible"),
        ];
        for (id, names) in refused {
            let error = check_id("user_id", id, 256).expect_err(id);
            let message = error.message;
            assert!(
                message.contains("`user_id`") && message.contains(names),
                "{id:?}: {message}"
            );
        }
        for id in [
            "user123",
            "ana\u{200D}maria",
            "مستخدم",
            "ユーザー",
            "a\u{FE0F}",
            "👩\u{200D}💻",
        ] {
            assert!(check_id("user_id", id, 256).is_ok(), "{id:?}");
        }
    }
}
