//! One delivery attempt: send one request to a sink and classify the answer.
//!
//! 2xx → delivered. 5xx, 408, 429, connection errors and timeouts → retry (with the sink's
//! `Retry-After` on 429/503). A 401 with a client-credentials token → fetch a new token once
//! and send again. Any other 4xx → dead, with the response body (read up to 64 KiB, kept up to
//! 2 KiB) as the reason. Response bodies are never read past the cap; the per-request timeout
//! covers slow bodies.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::header::RETRY_AFTER;
use reqwest::{Response, StatusCode};
use tracing::Instrument;

use super::credentials::Credentials;
use super::format;
use super::signing::Signer;
use super::IdentifyMessage;
use crate::config::SinkSettings;

/// Read at most this much of a response body…
pub const READ_CAP: usize = 64 * 1024;
/// …and keep at most this much of it as a dead-letter reason.
pub const KEEP_CAP: usize = 2 * 1024;
/// A `Retry-After` longer than this is not believed.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What became of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered,
    /// Try again later; `after` is the sink's `Retry-After`, when it sent one.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// The sink rejected the payload; do not try again.
    Dead(String),
}

/// A sink's HTTP client, format and credentials.
#[derive(Clone, Debug)]
pub struct Sender {
    pub sink: SinkSettings,
    http: reqwest::Client,
    credentials: Credentials,
    signer: Option<Signer>,
}

impl Sender {
    pub fn new(sink: SinkSettings) -> Sender {
        let http = reqwest::Client::builder()
            // Sinks and token endpoints are configured URLs: never wander elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(sink.timeout_secs))
            .connect_timeout(Duration::from_secs(sink.timeout_secs.min(10)))
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .expect("a client with rustls and no custom roots builds");
        let credentials = Credentials::for_sink(&sink, http.clone());
        let signer = Signer::for_sink(&sink);
        Sender {
            sink,
            http,
            credentials,
            signer,
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Send `messages` as one request (one message unless the format batches): one delivery
    /// attempt, traced as a root span of its own (the worker's loop is not a request).
    pub async fn send(&self, messages: &[IdentifyMessage]) -> Outcome {
        let span = tracing::info_span!(
            parent: None,
            "deliver",
            sink = %self.sink.name,
            messages = messages.len(),
            outcome = tracing::field::Empty
        );
        let outcome = self.send_once(messages).instrument(span.clone()).await;
        span.record(
            "outcome",
            match &outcome {
                Outcome::Delivered => "delivered",
                Outcome::Retry { .. } => "retry",
                Outcome::Dead(_) => "dead",
            },
        );
        outcome
    }

    async fn send_once(&self, messages: &[IdentifyMessage]) -> Outcome {
        // The exact bytes sent are the bytes signed.
        let body = serde_json::to_vec(&format::body(&self.sink, messages))
            .expect("a JSON value serializes");
        let key = format::idempotency_key(messages);
        let mut refreshed = false;
        loop {
            let token = match self.credentials.bearer().await {
                Ok(t) => t,
                Err(e) => {
                    return Outcome::Retry {
                        error: e.to_string(),
                        after: None,
                    }
                }
            };
            let mut request = format::apply_headers(
                self.http
                    .post(self.sink.url.clone())
                    .headers(crate::telemetry::trace_headers()),
                &self.sink,
                token.as_ref().map(|t| t.expose()),
                key,
            );
            if let Some(signer) = &self.signer {
                // Signed at each attempt: a receiver refuses an old `webhook-timestamp`.
                let now = Utc::now().timestamp();
                for (name, value) in signer.headers(&key.to_string(), now, &body) {
                    request = request.header(name, value);
                }
            }
            let request = request.body(body.clone());
            let timeout = Duration::from_secs(self.sink.timeout_secs);
            let response = match tokio::time::timeout(timeout, request.send()).await {
                Err(_) => return retry(format!("timed out after {}s", self.sink.timeout_secs)),
                Ok(Err(e)) => return retry(describe_transport(&e)),
                Ok(Ok(r)) => r,
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                if let Some(token) = &token {
                    if self.credentials.invalidate(token).await {
                        refreshed = true;
                        tracing::info!(sink = %self.sink.name, "sink answered 401: fetching a new token");
                        continue;
                    }
                }
            }
            return classify(status, response, timeout).await;
        }
    }
}

fn retry(error: String) -> Outcome {
    Outcome::Retry { error, after: None }
}

/// The transport failure, without the URL's query (it is configuration, but may hold a key).
fn describe_transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body failed"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

async fn classify(status: StatusCode, response: Response, timeout: Duration) -> Outcome {
    if status.is_success() {
        // Not reading the body: dropping the response closes or reuses the connection.
        return Outcome::Delivered;
    }
    let retryable = status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS;
    let after = if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()))
    } else {
        None
    };
    let body = match tokio::time::timeout(timeout, read_capped(response)).await {
        Ok(text) => text,
        Err(_) => "(response body timed out)".into(),
    };
    let reason = if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {body}")
    };
    if retryable {
        Outcome::Retry {
            error: reason,
            after,
        }
    } else {
        Outcome::Dead(reason)
    }
}

/// Up to `READ_CAP` bytes of the body, the first `KEEP_CAP` of them as lossy UTF-8.
async fn read_capped(mut response: Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < READ_CAP {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    buf.truncate(KEEP_CAP);
    String::from_utf8_lossy(&buf).trim().to_string()
}

/// Full jitter: uniform in `[0, min(cap, base · 2^(attempts-1))]`, but never sooner than
/// the sink's `Retry-After`.
pub fn backoff(sink: &SinkSettings, attempts: i32, retry_after: Option<Duration>) -> Duration {
    let cap = Duration::from_secs(sink.backoff_cap_secs);
    let exp = (attempts.max(1) - 1).min(30) as u32;
    let ceiling = Duration::from_millis(sink.backoff_base_ms)
        .saturating_mul(2u32.saturating_pow(exp))
        .min(cap);
    let jitter = Duration::from_millis(rand::rng().random_range(0..=ceiling.as_millis() as u64));
    match retry_after {
        Some(after) => jitter.max(after.min(MAX_RETRY_AFTER)),
        None => jitter,
    }
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_to_the_cap_and_honours_retry_after() {
        let sink: SinkSettings = serde_json::from_value(serde_json::json!({
            "name": "s", "url": "http://127.0.0.1:9/", "backoff_base_ms": 100, "backoff_cap_secs": 1
        }))
        .unwrap();
        for _ in 0..100 {
            assert!(backoff(&sink, 1, None) <= Duration::from_millis(100));
            assert!(backoff(&sink, 3, None) <= Duration::from_millis(400));
            assert!(backoff(&sink, 40, None) <= Duration::from_secs(1));
            assert!(backoff(&sink, 1, Some(Duration::from_secs(5))) >= Duration::from_secs(5));
        }
    }
}
