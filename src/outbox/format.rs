//! Sink formats: pure functions from identify messages to the HTTP body and headers each kind
//! of sink expects. No I/O here; the worker sends what these build.
//!
//! - `seed`: one JSON object per request, exactly the specification's sample
//!   (`user_id`, `traits`, `timestamp`, plus `context`), `Authorization: Bearer`, `KEY`.
//! - `thrivestack`: a JSON array of identify objects per request, `x-api-key`.
//! - `segment`: Segment's HTTP tracking API `identify` call, the write key as basic auth.
//! - `webhook`: a plain JSON event (`type`, `id`, `time`, `user_id`, …) for any receiver.
//!
//! Any of them may also be signed (Standard Webhooks, [`super::signing`]).

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::RequestBuilder;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::IdentifyMessage;
use crate::config::{SinkFormat, SinkSettings, TimestampRule};

/// The header that lets a sink drop a repeated delivery.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// How many messages one request carries for this sink.
pub fn messages_per_request(sink: &SinkSettings) -> usize {
    match sink.format {
        SinkFormat::Thrivestack => sink.batch_size,
        SinkFormat::Seed | SinkFormat::Segment | SinkFormat::Webhook => 1,
    }
}

/// The JSON body of one request carrying `messages` (one message unless the format batches).
pub fn body(sink: &SinkSettings, messages: &[IdentifyMessage]) -> Value {
    let rule = sink.timestamp_rule();
    match sink.format {
        SinkFormat::Seed => seed_body(&messages[0], rule),
        SinkFormat::Segment => segment_body(&messages[0], rule),
        SinkFormat::Thrivestack => thrivestack_body(messages, rule),
        SinkFormat::Webhook => webhook_body(&messages[0]),
    }
}

/// The `Idempotency-Key` of a request: the message id, or for a ThriveStack batch the first
/// message's id (a retried batch is always the same claim's messages in the same order only
/// when nothing else changed, so sinks should de-duplicate per item by the ids in the body).
pub fn idempotency_key(messages: &[IdentifyMessage]) -> Uuid {
    messages[0].message_id
}

fn timestamp(message: &IdentifyMessage, rule: TimestampRule) -> &str {
    match rule {
        TimestampRule::CreatedAt => &message.created_at,
        TimestampRule::EventTime => &message.event_at,
    }
}

/// The specification's sample object; `context.anonymous_id` when the visitor was known.
/// Under the `event_time` rule the creation time moves to a `created_at` trait.
pub fn seed_body(message: &IdentifyMessage, rule: TimestampRule) -> Value {
    let mut traits = message.traits.clone();
    if rule == TimestampRule::EventTime {
        traits.insert("created_at".into(), json!(message.created_at));
    }
    let mut context = message.context.clone();
    if let Some(anonymous_id) = &message.anonymous_id {
        context.insert("anonymous_id".into(), json!(anonymous_id));
    }
    json!({
        "user_id": message.user_id,
        "traits": traits,
        "timestamp": timestamp(message, rule),
        "context": context,
    })
}

/// ThriveStack's array of identify objects; the creation time is always the `created_at`
/// trait, the anonymous id is `context.device_id`, the user agent `context.userAgent`, and
/// each item carries its `message_id` in `context` so a sink can de-duplicate items of a
/// retried batch.
pub fn thrivestack_body(messages: &[IdentifyMessage], rule: TimestampRule) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|message| {
                let mut traits = message.traits.clone();
                traits.insert("created_at".into(), json!(message.created_at));
                let mut context = renamed(&message.context, &[("user_agent", "userAgent")]);
                if let Some(anonymous_id) = &message.anonymous_id {
                    context.insert("device_id".into(), json!(anonymous_id));
                }
                context.insert("message_id".into(), json!(message.message_id));
                json!({
                    "user_id": message.user_id,
                    "traits": traits,
                    "timestamp": timestamp(message, rule),
                    "context": context,
                })
            })
            .collect(),
    )
}

/// `context` with some keys renamed (Segment's camelCase names); `page`, `campaign`,
/// `locale` and `ip` already carry Segment's names.
fn renamed(context: &Map<String, Value>, names: &[(&str, &str)]) -> Map<String, Value> {
    context
        .iter()
        .map(|(k, v)| {
            let name = names
                .iter()
                .find(|(from, _)| *from == k.as_str())
                .map(|(_, to)| *to);
            (name.unwrap_or(k).to_string(), v.clone())
        })
        .collect()
}

/// Segment's `identify`: camelCase names, `createdAt` trait, `anonymousId` when known,
/// the context's `user_agent` as Segment's `userAgent`.
pub fn segment_body(message: &IdentifyMessage, rule: TimestampRule) -> Value {
    let mut traits = message.traits.clone();
    traits.insert("createdAt".into(), json!(message.created_at));
    let context = renamed(
        &message.context,
        &[
            ("user_agent", "userAgent"),
            ("first_sign_in", "firstSignIn"),
        ],
    );
    let mut body = json!({
        "type": "identify",
        "userId": message.user_id,
        "traits": traits,
        "timestamp": timestamp(message, rule),
        "messageId": message.message_id,
        "context": context,
    });
    if let Some(anonymous_id) = &message.anonymous_id {
        body["anonymousId"] = json!(anonymous_id);
    }
    body
}

/// The `webhook` format's event: what happened (`identify`), its id (the message id, also
/// `webhook-id` when signed), when (`time`, the sign-in), who (`user_id`, `anonymous_id` when
/// known), whether it was their first sign-in, when the account was created, the traits and
/// the context.
pub fn webhook_body(message: &IdentifyMessage) -> Value {
    let mut context = message.context.clone();
    let first_sign_in = context
        .remove("first_sign_in")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let mut body = json!({
        "type": "identify",
        "id": message.message_id,
        "time": message.event_at,
        "user_id": message.user_id,
        "first_sign_in": first_sign_in,
        "created_at": message.created_at,
        "traits": message.traits,
        "context": context,
    });
    if let Some(anonymous_id) = &message.anonymous_id {
        body["anonymous_id"] = json!(anonymous_id);
    }
    body
}

/// Add the format's headers and credentials to a request. `bearer` is the static or
/// client-credentials token, when the sink has one. Secret header values are marked
/// sensitive so they never show in `Debug` output.
pub fn apply_headers(
    request: RequestBuilder,
    sink: &SinkSettings,
    bearer: Option<&str>,
    idempotency_key: Uuid,
) -> RequestBuilder {
    let mut request = request
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .header(IDEMPOTENCY_KEY, idempotency_key.to_string());
    if let Some(token) = bearer {
        if let Some(v) = sensitive(&format!("Bearer {token}")) {
            request = request.header(AUTHORIZATION, v);
        }
    }
    let key = sink.api_key.as_ref().map(|k| k.expose());
    match (sink.format, key) {
        (SinkFormat::Seed, Some(key)) => {
            if let Some(v) = sensitive(key) {
                request = request.header("key", v);
            }
        }
        (SinkFormat::Thrivestack, Some(key)) => {
            if let Some(v) = sensitive(key) {
                request = request.header("x-api-key", v);
            }
        }
        // Segment: the write key is the user name, the password is empty.
        (SinkFormat::Segment, Some(key)) => request = request.basic_auth(key, Some("")),
        // The configuration check refuses a key for a webhook sink.
        (SinkFormat::Webhook, Some(_)) | (_, None) => {}
    }
    request
}

/// A header value marked sensitive; `None` for a value that cannot be a header (the
/// configuration check keeps such values out, and we never echo them).
fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
