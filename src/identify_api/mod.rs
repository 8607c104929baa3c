//! `POST /api/identify`: the receiving side of an identify call (spec/identify-api.md).
//!
//! A request passes, in order: credentials (`auth`), the per-caller rate limit, the media type
//! and size limits and the JSON itself (`body`), then each identify object field by field.
//! Accepted calls go to the group-commit `writer`, which logs them and creates or merges the
//! profiles. Every refusal is the spec's error JSON naming the header or field at fault.

mod auth;
mod body;
mod error;
mod fields;
mod jwks;
pub mod openapi;
mod timestamp;
mod writer;

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::{json, Value};

pub use error::ApiError;

pub use timestamp::parse_created_at;

use crate::config::{IdentifyApiSettings, Settings};
use crate::store::{request_digest, IdentifyCall, Store};
use body::{IdentifyItem, Payload};
use writer::{Answer, Recorded, Writer};

/// The success message of the specification.
pub const SUCCESS_MESSAGE: &str = "User identity updated successfully";

/// The Identify API's state; `None` inside when `[identify_api]` is not configured.
#[derive(Clone, Default)]
pub struct IdentifyApi(Option<Arc<Inner>>);

struct Inner {
    settings: IdentifyApiSettings,
    auth: auth::Authenticator,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    writer: Writer,
    /// `(caller, Idempotency-Key)` of the requests being processed on this replica: a second
    /// one with the same key meanwhile is refused (409). Bounded by the requests in flight.
    in_flight: Mutex<HashSet<(String, String)>>,
    /// `max_requests_in_flight` permits: a request holds one from before its body is read
    /// until it is answered, so bodies in memory stay bounded.
    bodies: tokio::sync::Semaphore,
}

/// A claimed `Idempotency-Key`, released when the request ends however it ends.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<(String, String)>>,
    key: Option<(String, String)>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.set
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
        }
    }
}

impl IdentifyApi {
    /// Build from the settings; also returns the writer task to stop with the server.
    pub fn build(
        settings: &Settings,
        http: reqwest::Client,
        store: Store,
    ) -> (IdentifyApi, Option<tokio::task::JoinHandle<()>>) {
        let Some(s) = settings.identify_api.clone() else {
            return (IdentifyApi(None), None);
        };
        let limiter = NonZeroU32::new(s.rate_limit_per_minute).map(|rate| {
            let burst = s.rate_limit_burst.and_then(NonZeroU32::new).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        let (writer, task) = Writer::spawn(store, s.write_batch_max);
        let inner = Inner {
            auth: auth::Authenticator::new(&s, http),
            limiter,
            writer,
            in_flight: Mutex::default(),
            bodies: tokio::sync::Semaphore::new(s.max_requests_in_flight),
            settings: s,
        };
        (IdentifyApi(Some(Arc::new(inner))), Some(task))
    }

    /// The configured settings, if any (the OpenAPI document reflects `require`).
    pub fn settings(&self) -> Option<&IdentifyApiSettings> {
        self.0.as_ref().map(|i| &i.settings)
    }
}

/// `POST /api/identify`.
#[utoipa::path(
    post,
    path = "/api/identify",
    tag = "identify",
    request_body(content = openapi::IdentifyBody, content_type = "application/json",
        description = "One identify object, or an array of up to 100 (ThriveStack's current API)."),
    params(
        ("KEY" = Option<String>, Header, description = "API key (also accepted as `x-api-key`); required unless `[identify_api] require` leaves it out"),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,256}$", description = "Up to 256 visible characters; a repeat of the same request (the same user_id, traits, context and timestamp) returns the first answer without writing again; the key reused for a different request answers 422, and while a request holding it is in progress 409. For an array, item i uses `<key>#<i>`. Without it, an object's `message_id` is its key."),
        ("Accept" = Option<String>, Header, pattern = r"^[\t -~\u0080-\u00FF]*$", description = "Ignored: the answer is always application/json. (As any header value, no control characters: a request with one is refused, 400 without a body, before it reaches the API.)"),
    ),
    responses(
        (status = 200, description = "Recorded (or an idempotent replay, marked `Idempotent-Replayed: true`). A batch answers `success` or `partial` with one result per item.", body = openapi::IdentifyResponse),
        (status = 400, description = "INVALID_REQUEST: malformed JSON, a missing or invalid field (named in the message); a batch whose every item failed carries `results` too.", body = openapi::ErrorBody),
        (status = 401, description = "UNAUTHORIZED: missing, invalid or expired token or key.", body = openapi::ErrorBody),
        (status = 403, description = "FORBIDDEN: the token lacks the `telemetry_apis` scope.", body = openapi::ErrorBody),
        (status = 405, description = "METHOD_NOT_ALLOWED: only POST.", body = openapi::ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT: the body did not arrive within `server.body_read_timeout_secs` of the header; nothing was written.", body = openapi::ErrorBody),
        (status = 409, description = "IDEMPOTENCY_KEY_IN_USE: a request with this Idempotency-Key is still in progress; retry after it answers.", body = openapi::ErrorBody),
        (status = 413, description = "PAYLOAD_TOO_LARGE: body over 512 KB, an object over 32 KB, or more than 100 objects.", body = openapi::ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: Content-Type is not application/json.", body = openapi::ErrorBody),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED: the Idempotency-Key (or message_id) was first used for a different request; nothing was written. In an array, that item's result.", body = openapi::ErrorBody),
        (status = 429, description = "RATE_LIMITED: too many requests for this key.", body = openapi::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "INTERNAL_ERROR: nothing was recorded.", body = openapi::ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE: not configured, store or token issuer unavailable; retry later.", body = openapi::ErrorBody),
    )
)]
pub async fn receive_identify(State(api): State<IdentifyApi>, request: Request) -> Response {
    let Some(api) = api.0 else {
        return ApiError::unavailable(
            "the Identify API is not configured on this server ([identify_api] is missing)",
        )
        .into_response();
    };
    match api.handle(request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

impl Inner {
    #[tracing::instrument(skip_all, fields(caller))]
    async fn handle(&self, request: Request) -> Result<Response, ApiError> {
        let s = &self.settings;
        let (parts, body) = request.into_parts();
        let caller = self.auth.authenticate(&parts.headers).await?;
        tracing::Span::current().record("caller", caller.id.as_str());
        self.check_rate(&caller.id)?;
        body::check_content_type(&parts.headers)?;
        let idempotency_key = idempotency_key(&parts.headers)?;
        let _claimed = self.claim(&caller.id, idempotency_key.as_deref())?;
        // Waits while `max_requests_in_flight` others are being read or recorded.
        let _turn = self
            .bodies
            .acquire()
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down; retry later"))?;
        let bytes = body::read_body(&parts.headers, body, s.max_request_bytes).await?;
        let now = Utc::now();
        match body::parse_payload(&bytes, s)? {
            Payload::One(value) => {
                let item = body::check_item(value, s, now)?;
                let key = idempotency_key.or_else(|| item.message_id.clone());
                let call = to_call(&caller.id, key, item, now);
                let recorded = self.writer.record(vec![call]).await?;
                let recorded = recorded
                    .into_iter()
                    .next()
                    .ok_or_else(|| ApiError::internal("the writer answered no result"))?;
                Ok(respond_one(recorded))
            }
            Payload::Many(values) => {
                let checked: Vec<Result<IdentifyCall, ApiError>> = values
                    .into_iter()
                    .enumerate()
                    .map(|(i, value)| {
                        let item = body::check_item(value, s, now)?;
                        let key = match &idempotency_key {
                            Some(k) => Some(format!("{k}#{i}")),
                            None => item.message_id.clone(),
                        };
                        Ok(to_call(&caller.id, key, item, now))
                    })
                    .collect();
                // The calls go to the writer; the refusals stay behind, in place.
                let mut calls = Vec::with_capacity(checked.len());
                let slots: Vec<Option<ApiError>> = checked
                    .into_iter()
                    .map(|c| match c {
                        Ok(call) => {
                            calls.push(call);
                            None
                        }
                        Err(e) => Some(e),
                    })
                    .collect();
                let recorded = if calls.is_empty() {
                    Vec::new()
                } else {
                    self.writer.record(calls).await?
                };
                Ok(respond_batch(slots, recorded))
            }
        }
    }

    /// Claim `(caller, key)` for this request, or 409 while another request holds it.
    fn claim(&self, caller: &str, key: Option<&str>) -> Result<InFlight<'_>, ApiError> {
        let Some(key) = key else {
            return Ok(InFlight {
                set: &self.in_flight,
                key: None,
            });
        };
        let claimed = (caller.to_string(), key.to_string());
        let mut set = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !set.insert(claimed.clone()) {
            return Err(ApiError::key_in_flight());
        }
        Ok(InFlight {
            set: &self.in_flight,
            key: Some(claimed),
        })
    }

    /// One token from the caller's bucket, or 429 with the wait in whole seconds.
    fn check_rate(&self, caller: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        match limiter.check_key(&caller.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::rate_limited(
                    wait.as_secs_f64().ceil().max(1.0) as u64
                ))
            }
        }
    }
}

/// `Idempotency-Key`, when sent: 1 to 256 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 256 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(k.to_string()))
        }
        _ => Err(ApiError::invalid(
            "Idempotency-Key header must be 1 to 256 visible ASCII characters",
        )),
    }
}

/// The call to record, with the answer it gets (kept for replays). Its JSON is encoded here,
/// on the request's task, so the single writer only binds text.
fn to_call(
    caller: &str,
    idempotency_key: Option<String>,
    item: IdentifyItem,
    now: chrono::DateTime<Utc>,
) -> IdentifyCall {
    let traits_json = json_text(&item.traits);
    let response = success_json(&item.user_id, &traits_json, &item.timestamp_echo);
    let context_json = item.context.as_ref().map(json_text);
    let request_digest = request_digest(
        &item.user_id,
        &traits_json,
        context_json.as_deref(),
        item.created_at,
    );
    IdentifyCall {
        caller: caller.to_string(),
        idempotency_key,
        user_id: item.user_id,
        traits: item.traits,
        traits_json,
        context_json,
        account_created_at: item.created_at,
        response,
        request_digest,
        received_at: now,
    }
}

/// Compact JSON of an object (infallible: string keys, JSON values).
fn json_text(map: &serde_json::Map<String, Value>) -> String {
    serde_json::to_string(map).unwrap_or_default()
}

/// `{"data":{"timestamp","traits","user_id"},"message","status":"success"}` as compact JSON,
/// keys in serde_json's (sorted) order: the text `json!` would give, built around the traits
/// already encoded.
fn success_json(user_id: &str, traits_json: &str, timestamp: &str) -> String {
    let quoted = |s: &str| Value::from(s).to_string();
    format!(
        r#"{{"data":{{"timestamp":{},"traits":{traits_json},"user_id":{}}},"message":{},"status":"success"}}"#,
        quoted(timestamp),
        quoted(user_id),
        quoted(SUCCESS_MESSAGE),
    )
}

/// A JSON text answer (the writer hands back what was stored, already encoded).
fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn respond_one(recorded: Recorded) -> Response {
    match recorded.answer() {
        Answer::Recorded(body) => json_response(StatusCode::OK, body),
        Answer::Replayed(body) => {
            let mut r = json_response(StatusCode::OK, body);
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            r
        }
        Answer::KeyReused(e) => e.into_response(),
    }
}

/// `{"status": "success" | "partial" | "error", "message", "results": [...]}`; all failed is a
/// 400 that is also the spec's error shape (with `error_code`). `slots` holds each item's
/// refusal, `None` where the item went to the writer (whose results come in the same order); a
/// recorded item whose idempotency key was used for another request is refused there (422's
/// error object).
fn respond_batch(slots: Vec<Option<ApiError>>, recorded: Vec<Recorded>) -> Response {
    let mut recorded = recorded.into_iter();
    let results: Vec<Result<String, ApiError>> = slots
        .into_iter()
        .map(|slot| match slot {
            Some(e) => Err(e),
            None => match recorded.next().map(Recorded::answer) {
                Some(Answer::Recorded(body) | Answer::Replayed(body)) => Ok(body),
                Some(Answer::KeyReused(e)) => Err(e),
                None => Err(ApiError::internal("the writer answered too few results")),
            },
        })
        .collect();
    let total = results.len();
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    let message = format!("{accepted} of {total} identify calls recorded");
    if accepted == 0 {
        let results: Vec<Value> = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(ApiError::body)
            .collect();
        let body = json!({"status": "error", "message": message, "error_code": "INVALID_REQUEST", "results": results});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let status = if accepted == total {
        "success"
    } else {
        "partial"
    };
    // Keys in serde_json's (sorted) order, as `json!` would give; the recorded answers are
    // already JSON text.
    let mut body = format!(r#"{{"message":{},"results":["#, Value::from(message));
    for (i, result) in results.into_iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        match result {
            Ok(answer) => body.push_str(&answer),
            Err(e) => body.push_str(&e.body().to_string()),
        }
    }
    body.push_str(&format!(r#"],"status":"{status}"}}"#));
    json_response(StatusCode::OK, body)
}

/// Answer for a method the route does not serve.
pub async fn post_only() -> ApiError {
    ApiError::method_not_allowed("POST")
}

/// Answer for a method the route does not serve.
pub async fn get_only() -> ApiError {
    ApiError::method_not_allowed("GET")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_text_is_what_json_would_give() {
        let traits = json!({"plan": "pro \"x\"", "seats": 3, "tags": ["a"], "gone": null});
        let text = success_json("user \u{e9}\n", &traits.to_string(), "2021-03-04T05:06:07Z");
        let value = json!({
            "status": "success",
            "message": SUCCESS_MESSAGE,
            "data": {"user_id": "user \u{e9}\n", "traits": traits, "timestamp": "2021-03-04T05:06:07Z"}
        });
        assert_eq!(text, value.to_string());
    }

    #[tokio::test]
    async fn batch_text_is_what_json_would_give() {
        let recorded = |response: &str| Recorded {
            response: response.into(),
            outcome: crate::store::IdentifyOutcome::Applied { created: true },
        };
        let refusal = ApiError::invalid("`user_id` must not be empty");
        let response = respond_batch(
            vec![None, Some(refusal.clone()), None],
            vec![recorded(r#"{"a":1}"#), recorded(r#"{"b":2}"#)],
        );
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let expected = json!({
            "status": "partial",
            "message": "2 of 3 identify calls recorded",
            "results": [{"a": 1}, refusal.body(), {"b": 2}],
        });
        assert_eq!(std::str::from_utf8(&body).unwrap(), expected.to_string());
    }
}
