//! Field checks of one identify object: identifiers, flat traits, nested context, names and
//! string lengths. Each refusal names the field (`traits.plan`, `context.device.id`).

use serde_json::{Map, Value};

use super::error::ApiError;
use super::settings::IdentifyApiSettings;

/// A non-empty identifier of at most `max` characters without control characters.
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
