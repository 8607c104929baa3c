//! Per-client-IP rate limits on `/login/*` and `/callback/*` (GCRA via `governor`). Each
//! replica keeps its own counters, so N replicas admit up to N times the rate in total.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::client_ip::ClientIp;
use crate::error::ErrorInfo;

/// A keyed limiter shared by the routes it guards.
#[derive(Clone)]
pub struct IpLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl IpLimiter {
    /// `per_minute` requests per minute per IP, with bursts up to `burst`.
    pub fn new(per_minute: u32, burst: u32) -> IpLimiter {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute.max(1)).expect("at least one"))
            .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least one"));
        IpLimiter {
            limiter: Arc::new(DefaultKeyedRateLimiter::keyed(quota)),
        }
    }

    /// Drop state of idle clients (called periodically).
    pub fn shrink(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Middleware: 429 (a page, or JSON under /api) with `Retry-After` past the limit.
pub async fn limit_by_ip(limiter: IpLimiter, request: Request, next: Next) -> Response {
    let Some(ClientIp(ip)) = request.extensions().get::<ClientIp>().copied() else {
        return next.run(request).await;
    };
    match limiter.limiter.check_key(&ip) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            crate::metrics::rate_limited("login");
            // Logged once, by the error middleware, with this detail.
            let mut info = ErrorInfo::from_status(StatusCode::TOO_MANY_REQUESTS, String::new());
            info.reason = "rate_limited";
            info.detail = format!("client {ip} over the login rate limit; retry after {secs} s");
            let mut response = info.into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
    }
}
