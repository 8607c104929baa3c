//! Type tolerance and string hygiene for claim values.
//!
//! Claims are user- or admin-editable data from another party. Every string that becomes a trait
//! goes through [`clean`]: control characters removed, surrounding whitespace trimmed, and the
//! result capped at a length counted in `char`s (never splitting UTF-8):
//!
//! | cap | applies to |
//! | --- | --- |
//! | [`MAX_URL_CHARS`] = 2048 | URLs (`enrichment_avatar`, profile/website URLs read for handles) |
//! | [`MAX_TEXT_CHARS`] = 256 | every other string trait |
//! | [`MAX_INPUT_CHARS`] = 4096 | any claim string is cut to this before it is parsed at all |
//!
//! A claim of the wrong type (a number where a string is expected, an object, …) is skipped
//! with a debug log, except that a number is accepted as text where noted.

use serde_json::Value;

/// Cap for URL-valued traits and URL claims.
pub const MAX_URL_CHARS: usize = 2048;
/// Cap for every other string trait.
pub const MAX_TEXT_CHARS: usize = 256;
/// Any claim string is cut to this many chars before parsing (bounds the work on a 50 KB claim).
pub const MAX_INPUT_CHARS: usize = 4096;

/// Removes control characters, trims, and caps at `max_chars`. `None` when nothing is left.
pub fn clean(s: &str, max_chars: usize) -> Option<String> {
    let no_ctrl: String = s
        .chars()
        .take(MAX_INPUT_CHARS.max(max_chars))
        .filter(|c| !c.is_control())
        .collect();
    let trimmed = no_ctrl.trim();
    if trimmed.is_empty() {
        return None;
    }
    let capped: String = trimmed.chars().take(max_chars).collect();
    let capped = capped.trim_end();
    (!capped.is_empty()).then(|| capped.to_owned())
}

/// A string claim value, cleaned. Numbers are turned into text when `numbers` is true; any other
/// type is skipped with a debug log naming `what` (the claim path, never its value).
pub fn text(value: &Value, max_chars: usize, numbers: bool, what: &str) -> Option<String> {
    match value {
        Value::String(s) => clean(s, max_chars),
        Value::Number(n) if numbers => clean(&n.to_string(), max_chars),
        Value::Null => None,
        other => {
            tracing::debug!(
                claim = what,
                kind = kind_of(other),
                "claim skipped: not a string"
            );
            None
        }
    }
}

/// The JSON type name of a value, for logs.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// True when the value is a JSON `true` or the string "true" (some providers send strings).
pub fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_trims_removes_controls_and_caps_by_chars() {
        assert_eq!(clean("  Ana\u{0}\n ", 10), Some("Ana".into()));
        assert_eq!(clean(" \t ", 10), None);
        assert_eq!(clean("ééééé", 3), Some("ééé".into()));
        let big = "x".repeat(50_000);
        assert_eq!(
            clean(&big, MAX_TEXT_CHARS).unwrap().chars().count(),
            MAX_TEXT_CHARS
        );
    }

    #[test]
    fn text_accepts_numbers_only_when_asked() {
        assert_eq!(
            text(&serde_json::json!(42), 10, true, "x"),
            Some("42".into())
        );
        assert_eq!(text(&serde_json::json!(42), 10, false, "x"), None);
        assert_eq!(text(&serde_json::json!({"a": 1}), 10, true, "x"), None);
    }
}
