//! Reading and checking the request body: media type, size limits, JSON, then each identify
//! object field by field. Every refusal names the header or field at fault.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::fields::{check_id, check_nested, check_traits, clip, kind};
use super::timestamp::parse_created_at;
use crate::config::IdentifyApiSettings;

/// The top-level fields of an identify object.
const FIELDS: [&str; 6] = [
    "user_id",
    "traits",
    "user_traits",
    "timestamp",
    "context",
    "message_id",
];

/// What the body held: one identify object, or an array of them (ThriveStack's current API).
#[derive(Debug)]
pub enum Payload {
    One(Value),
    Many(Vec<Value>),
}

/// One checked identify object.
#[derive(Debug, Clone)]
pub struct IdentifyItem {
    pub user_id: String,
    /// As sent; `null` values mean "remove this trait".
    pub traits: Map<String, Value>,
    /// The account's creation time; `None` when `timestamp` was not sent.
    pub created_at: Option<DateTime<Utc>>,
    /// What the response echoes: the `timestamp` as sent, or the time used when absent.
    pub timestamp_echo: String,
    pub context: Option<Map<String, Value>>,
    pub message_id: Option<String>,
}

/// `Content-Type` must be `application/json` (a `charset` parameter may only say UTF-8).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::unsupported_media_type(
            "missing Content-Type header: send Content-Type: application/json",
        ));
    };
    let text = value.to_str().unwrap_or("").to_ascii_lowercase();
    let mut parts = text.split(';').map(str::trim);
    let essence = parts.next().unwrap_or("");
    let charset_ok = parts.all(|p| match p.split_once('=') {
        Some((k, v)) if k.trim() == "charset" => {
            matches!(v.trim().trim_matches('"'), "utf-8" | "utf8")
        }
        _ => true,
    });
    if essence != "application/json" || !charset_ok {
        return Err(ApiError::unsupported_media_type(format!(
            "Content-Type header is {:?}; send Content-Type: application/json",
            value.to_str().unwrap_or("<not text>")
        )));
    }
    Ok(())
}

/// Read the body, refusing (413) once it passes `limit` bytes; a declared `Content-Length`
/// over the limit is refused before reading.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::too_large(format!("request body is larger than {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::with_capacity(declared.map_or(1024, |n| n as usize));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            if crate::serve::is_body_timeout(&e) {
                return ApiError::body_timeout();
            }
            ApiError::invalid("the request body could not be read").with_detail(e.to_string())
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// Parse the body as one identify object or an array of them.
pub fn parse_payload(bytes: &[u8], s: &IdentifyApiSettings) -> Result<Payload, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "request body is empty: send a JSON identify object",
        ));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid(format!("request body is not valid JSON: {e}")))?;
    match value {
        Value::Object(_) => Ok(Payload::One(value)),
        Value::Array(items) if items.is_empty() => Err(ApiError::invalid(
            "request body is an empty array: send at least one identify object",
        )),
        Value::Array(items) if items.len() > s.max_batch_items => {
            Err(ApiError::too_large(format!(
                "request body has {} identify objects; at most {} per request",
                items.len(),
                s.max_batch_items
            )))
        }
        Value::Array(items) => Ok(Payload::Many(items)),
        other => Err(ApiError::invalid(format!(
            "request body must be a JSON object (or an array of objects), not {}",
            kind(&other)
        ))),
    }
}

/// Check one identify object; `now` is used when `timestamp` is absent.
pub fn check_item(
    value: Value,
    s: &IdentifyApiSettings,
    now: DateTime<Utc>,
) -> Result<IdentifyItem, ApiError> {
    let Value::Object(mut object) = value else {
        return Err(ApiError::invalid(format!(
            "each identify call must be a JSON object, not {}",
            kind(&value)
        )));
    };
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!(
            "unknown field `{}`: an identify object has user_id, traits (or user_traits), \
             timestamp, context and message_id; put other information in traits or context",
            clip(unknown)
        )));
    }
    let size = serialized_len(&object);
    if size > s.max_object_bytes {
        return Err(ApiError::too_large(format!(
            "identify object is {size} bytes; at most {} per object",
            s.max_object_bytes
        )));
    }
    // `null` for an optional field is the same as leaving it out.
    object.retain(|k, v| k == "user_id" || !v.is_null());

    let user_id = match object.remove("user_id") {
        None => {
            return Err(ApiError::invalid(
                "missing field `user_id`: the unique identifier of the user",
            ))
        }
        Some(Value::String(id)) => id,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "`user_id` must be a string, not {}",
                kind(&other)
            )))
        }
    };
    check_id("user_id", &user_id, s.max_user_id_chars)?;

    let traits = match (object.remove("traits"), object.remove("user_traits")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "send `traits` or `user_traits`, not both (they are the same field)",
            ))
        }
        (Some(t), None) => check_traits("traits", t, s)?,
        (None, Some(t)) => check_traits("user_traits", t, s)?,
        (None, None) => Map::new(),
    };

    let (created_at, timestamp_echo) = match object.remove("timestamp") {
        None => (None, crate::traits::format_time(now)),
        Some(Value::String(text)) => {
            let t = parse_created_at(&text, now)
                .map_err(|why| ApiError::invalid(format!("`timestamp`: {why}")))?;
            (Some(t), text)
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "`timestamp` must be a string (RFC 3339), not {}",
                kind(&other)
            )))
        }
    };

    let context = match object.remove("context") {
        None => None,
        Some(value @ Value::Object(_)) => {
            check_nested("context", &value, 1, s)?;
            match value {
                Value::Object(map) => Some(map),
                _ => None,
            }
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "`context` must be a JSON object, not {}",
                kind(&other)
            )))
        }
    };

    let message_id = match object.remove("message_id") {
        None => None,
        Some(Value::String(id)) => {
            check_id("message_id", &id, s.max_user_id_chars)?;
            Some(id)
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "`message_id` must be a string, not {}",
                kind(&other)
            )))
        }
    };

    Ok(IdentifyItem {
        user_id,
        traits,
        created_at,
        timestamp_echo,
        context,
        message_id,
    })
}

/// The length of `value` as compact JSON, counted without building the text.
fn serialized_len(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).map_or(0, |()| count.0)
}
