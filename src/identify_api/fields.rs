//! Field checks of one identify object: identifiers, flat traits, nested context, names and
//! string lengths. Each refusal names the field (`traits.plan`, `context.device.id`).

use serde_json::{Map, Number, Value};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::error::ApiError;
use crate::config::IdentifyApiSettings;

/// Unicode's `Bidi_Control` characters (a fixed set of twelve). In an identifier they make it
/// display as something it is not (`user\u{202E}nimda` shows as `useradmin`).
pub(super) const BIDI_CONTROLS: [char; 12] = [
    '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

/// A character that shows nothing: white space, a format character (zero-width space and
/// joiners, the byte-order mark, soft hyphen, tags), and the other default-ignorable ones
/// that are not format characters (variation selectors, Hangul fillers, the grapheme joiner).
pub(super) fn is_invisible(c: char) -> bool {
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
            Value::Null | Value::Bool(_) => {}
            Value::Number(number) => check_number(&at, number)?,
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
        Value::Number(number) => check_number(at, number)?,
        Value::Null | Value::Bool(_) => {}
    }
    Ok(())
}

/// The longest number accepted, in characters. Far beyond any decimal type, and within what
/// PostgreSQL's `jsonb` (its `numeric`: 16,383 digits after the point) keeps once written out.
pub(super) const MAX_NUMBER_CHARS: usize = 1000;

/// A number is kept as sent, every digit, when a 64-bit float can hold its magnitude. Beyond
/// that (`1e400`, `1e-400`) it is refused rather than kept: a sink that reads JSON numbers as
/// doubles (JavaScript, most analytics APIs) would turn it into infinity, which JSON cannot
/// carry, or into zero, after this API had answered 200.
pub(super) fn check_number(at: &str, number: &Number) -> Result<(), ApiError> {
    let text = number.as_str();
    if text.len() > MAX_NUMBER_CHARS {
        return Err(ApiError::invalid(format!(
            "`{at}` is a number longer than {MAX_NUMBER_CHARS} characters; send it as a string"
        )));
    }
    let value: f64 = text.parse().unwrap_or(f64::INFINITY);
    let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
    let not_zero = mantissa.bytes().any(|b| matches!(b, b'1'..=b'9'));
    if value.is_infinite() {
        return Err(ApiError::invalid(format!(
            "`{at}` is a number too large for a 64-bit float (beyond ±1.8e308): sinks would \
             read it as infinity; send it as a string"
        )));
    }
    if value == 0.0 && not_zero {
        return Err(ApiError::invalid(format!(
            "`{at}` is a number too close to zero for a 64-bit float (below 4.9e-324): sinks \
             would read it as 0; send it as a string"
        )));
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
    use super::{check_id, check_number, MAX_NUMBER_CHARS};

    #[test]
    fn numbers_are_kept_as_sent_within_a_double_s_range_and_refused_beyond_it() {
        const BIG: &str = "123456789012345678901234567890";
        const DECIMAL: &str = "0.1000000000000000055511151231257827";
        let number = |text: &str| -> serde_json::Number { serde_json::from_str(text).unwrap() };
        // Every digit is kept; serde_json writes an exponent as `e+`/`e-`.
        for (sent, kept) in [
            (BIG, BIG),
            (
                "-123456789012345678901234567890",
                "-123456789012345678901234567890",
            ),
            (DECIMAL, DECIMAL),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("-1.7976931348623157E+308", "-1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
            ("0", "0"),
            ("-0", "-0"),
            ("0.0e-999", "0.0e-999"),
            ("1.50", "1.50"),
        ] {
            let n = number(sent);
            assert_eq!(n.as_str(), kept, "the text is kept");
            assert!(check_number("traits.n", &n).is_ok(), "{sent}");
        }
        for (refused, names) in [
            ("1e400", "too large"),
            ("-1e400", "too large"),
            ("1.8e308", "too large"),
            ("1e-400", "too close to zero"),
            ("-2e-325", "too close to zero"),
        ] {
            let message = check_number("traits.n", &number(refused))
                .expect_err(refused)
                .message;
            assert!(
                message.contains("`traits.n`") && message.contains(names),
                "{refused}: {message}"
            );
        }
        let long = format!("0.{}", "1".repeat(MAX_NUMBER_CHARS));
        let message = check_number("context.n", &number(&long))
            .unwrap_err()
            .message;
        assert!(
            message.contains("`context.n`") && message.contains("longer"),
            "{message}"
        );
    }

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
