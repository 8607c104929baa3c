//! `GET /auth`: for reverse proxies' `auth_request` (nginx) and `forwardAuth` (Traefik). 204
//! with the user's id, email, and the name and traits chosen in `[auth_request]` in headers when
//! signed in (a live session of a profile that exists), 401 otherwise.
//!
//! Header values are made safe for a header line by [`header_value`]: claims are untrusted
//! text, and a CR or LF in one must never start a header of its own.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tower_sessions::Session;

use crate::error::AppError;
use crate::routes::signed_in::{current_user, end_session};
use crate::state::AppState;

/// The longest header value sent (after encoding); a longer list is cut at an element. Proxies
/// read response headers into a buffer of a few KiB (nginx `proxy_buffer_size`: 4 or 8 KiB).
pub const MAX_HEADER_VALUE_BYTES: usize = 2048;

pub fn router() -> Router<AppState> {
    Router::new().route("/auth", get(auth))
}

async fn auth(State(state): State<AppState>, session: Session) -> Result<Response, AppError> {
    let user = current_user(&state, &session)
        .await?
        .ok_or(AppError::NotSignedIn)?;
    let wanted = &state.settings.auth_request;
    let traits = if wanted.trait_headers.is_empty() {
        state
            .store
            .profile_exists(&user.user_id)
            .await?
            .then(serde_json::Map::new)
    } else {
        let profile = state.store.get_user(&user.user_id).await?;
        profile.map(|p| match p.traits {
            Value::Object(traits) => traits,
            _ => serde_json::Map::new(),
        })
    };
    let Some(traits) = traits else {
        // The profile was erased while this session lived: end the session too.
        end_session(&session).await?;
        return Err(AppError::NotSignedIn);
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    let text = |v: Option<&String>| v.map(|s| Value::String(s.clone()));
    put(headers, &wanted.user_id_header, text(Some(&user.user_id)));
    put(headers, &wanted.email_header, text(user.email.as_ref()));
    put(headers, &wanted.name_header, text(user.name.as_ref()));
    for (name, header) in &wanted.trait_headers {
        put(headers, header, traits.get(name).cloned());
    }
    Ok(response)
}

/// Sets one header when it is configured and the value has something to say.
fn put(headers: &mut HeaderMap, name: &str, value: Option<Value>) {
    if name.is_empty() {
        return;
    }
    let (Ok(name), Some(value)) = (HeaderName::try_from(name), value.and_then(header_value)) else {
        return;
    };
    headers.insert(name, value);
}

/// A trait or claim value as a header value: a string, number or boolean as text, a list
/// comma-separated. Control characters (CR, LF, NUL, tab, …) are dropped; `%`, `,` and every
/// byte outside printable ASCII are percent-encoded (UTF-8, RFC 3986 style), so
/// `José` is `Jos%C3%A9` and a proxy or app decodes it with any URL-decoding function. The
/// value is capped at [`MAX_HEADER_VALUE_BYTES`]; `None` when nothing is left.
pub fn header_value(value: Value) -> Option<HeaderValue> {
    let items: Vec<String> = match value {
        Value::Array(items) => items.iter().filter_map(scalar_text).collect(),
        other => scalar_text(&other).into_iter().collect(),
    };
    let mut out = String::new();
    for item in items
        .iter()
        .map(String::as_str)
        .map(encode)
        .filter(|e| !e.is_empty())
    {
        let extra = item.len() + usize::from(!out.is_empty());
        if out.len() + extra > MAX_HEADER_VALUE_BYTES {
            break;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&item);
    }
    let trimmed = out.trim();
    if trimmed.is_empty() {
        return None;
    }
    HeaderValue::from_str(trimmed).ok()
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Percent-encodes one value for a header line (see [`header_value`]).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().filter(|c| !c.is_control()) {
        if c.is_ascii() && c != '%' && c != ',' {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shown(value: Value) -> Option<String> {
        header_value(value).map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn header_values_never_break_the_line_and_keep_their_meaning() {
        let cases = [
            (json!("ana@acme.io"), Some("ana@acme.io")),
            (json!("José Müller"), Some("Jos%C3%A9 M%C3%BCller")),
            (
                json!("evil\r\nSet-Cookie: session=stolen"),
                Some("evilSet-Cookie: session=stolen"),
            ),
            (json!("\u{0}\u{7f}\t"), None),
            (json!("100%, sure"), Some("100%25%2C sure")),
            (json!(["admins", "sta,ff", "\r\n"]), Some("admins,sta%2Cff")),
            (json!(42), Some("42")),
            (json!(true), Some("true")),
            (json!({"a": 1}), None),
            (json!("\u{202E}gnp.exe"), Some("%E2%80%AEgnp.exe")),
        ];
        for (value, expected) in cases {
            assert_eq!(shown(value.clone()).as_deref(), expected, "{value}");
        }
        let many: Vec<String> = (0..500).map(|i| format!("group-{i:04}")).collect();
        let long = shown(json!(many)).unwrap();
        assert!(long.len() <= MAX_HEADER_VALUE_BYTES);
        assert!(
            long.ends_with(|c: char| c.is_ascii_digit()),
            "cut at an element"
        );
    }
}
