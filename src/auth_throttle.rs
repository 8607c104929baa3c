//! Failed authentication, throttled per client: once a client (an IPv4 address or an IPv6 /64)
//! has had [`MAX_FAILURES`] answers of 401 within a minute on the key-guarded routes (the
//! admin dashboard and API, `POST /api/identify`), its requests there answer 429 with
//! `Retry-After` until that minute is over — a correct key included, so guessing gains nothing
//! — then work again. Each burst is logged once, when it starts.
//!
//! Memory: a bounded cache of at most [`MAX_CLIENTS`] clients (about 100 bytes each, so ~10 MB
//! at most), each forgotten a minute after its last failure.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::client_ip::ClientIp;
use crate::error::ErrorInfo;
use crate::rate_limit::ClientKey;

/// Failed authentications a client may have in one window before it is refused.
pub const MAX_FAILURES: u32 = 10;
/// The window: a minute from a client's first failure.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Most clients remembered at once.
pub const MAX_CLIENTS: u64 = 100_000;

/// One client's failures in the current window.
#[derive(Debug)]
struct Burst {
    started: Instant,
    failures: u32,
}

/// What a failure did to the client's window.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Still below the limit.
    Counted,
    /// This failure reached the limit: the burst starts (log it).
    BurstStarted,
    /// Already over the limit.
    InBurst,
}

/// Per-client failure counts, shared by the guarded routes.
#[derive(Clone)]
pub struct AuthThrottle {
    clients: moka::sync::Cache<ClientKey, Arc<Mutex<Burst>>>,
    max_failures: u32,
    window: Duration,
}

impl Default for AuthThrottle {
    fn default() -> Self {
        Self::new(MAX_FAILURES, WINDOW)
    }
}

impl AuthThrottle {
    pub fn new(max_failures: u32, window: Duration) -> AuthThrottle {
        AuthThrottle {
            clients: moka::sync::Cache::builder()
                .max_capacity(MAX_CLIENTS)
                .time_to_idle(window)
                .build(),
            max_failures: max_failures.max(1),
            window,
        }
    }

    /// `Some(wait)` while `ip`'s client is refused.
    pub fn refused_for(&self, ip: IpAddr) -> Option<Duration> {
        let burst = self.clients.get(&ClientKey::of(ip))?;
        let burst = burst.lock().ok()?;
        let left = self.window.checked_sub(burst.started.elapsed())?;
        (burst.failures >= self.max_failures && !left.is_zero()).then_some(left)
    }

    /// Count a failed authentication from `ip`.
    pub fn fail(&self, ip: IpAddr) -> Failure {
        let entry = self.clients.get_with(ClientKey::of(ip), || {
            Arc::new(Mutex::new(Burst {
                started: Instant::now(),
                failures: 0,
            }))
        });
        let Ok(mut burst) = entry.lock() else {
            return Failure::Counted;
        };
        if burst.started.elapsed() >= self.window {
            *burst = Burst {
                started: Instant::now(),
                failures: 0,
            };
        }
        burst.failures = burst.failures.saturating_add(1);
        match burst.failures.cmp(&self.max_failures) {
            std::cmp::Ordering::Less => Failure::Counted,
            std::cmp::Ordering::Equal => Failure::BurstStarted,
            std::cmp::Ordering::Greater => Failure::InBurst,
        }
    }
}

/// Middleware for the key-guarded routes: 429 while the client is refused; counts each 401.
pub async fn throttle(throttle: AuthThrottle, request: Request, next: Next) -> Response {
    let Some(ClientIp(ip)) = request.extensions().get::<ClientIp>().copied() else {
        return next.run(request).await;
    };
    if let Some(wait) = throttle.refused_for(ip) {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        crate::metrics::rate_limited("authentication");
        let mut info = ErrorInfo::from_status(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed authentications; retry after {secs} s."),
        );
        info.reason = "auth_throttled";
        let mut response = info.into_response();
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED && throttle.fail(ip) == Failure::BurstStarted {
        tracing::warn!(
            client = %ClientKey::of(ip),
            path,
            failures = throttle.max_failures,
            "failed authentications: refusing this client for {} s",
            throttle.window.as_secs()
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_starts_once_refuses_the_client_and_ends_with_its_window() {
        let throttle = AuthThrottle::new(3, Duration::from_millis(300));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(throttle.fail(ip), Failure::Counted);
        assert_eq!(throttle.fail(ip), Failure::Counted);
        assert!(throttle.refused_for(ip).is_none());
        assert_eq!(throttle.fail(ip), Failure::BurstStarted);
        assert_eq!(throttle.fail(ip), Failure::InBurst, "logged once per burst");
        assert!(throttle.refused_for(ip).is_some());
        assert!(throttle.refused_for(other).is_none(), "per client");
        let deadline = Instant::now() + Duration::from_secs(5);
        while throttle.refused_for(ip).is_some() {
            assert!(Instant::now() < deadline, "the window never ended");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(throttle.fail(ip), Failure::Counted, "a new window");
    }

    #[test]
    fn an_ipv6_64_is_one_client() {
        let throttle = AuthThrottle::new(2, WINDOW);
        throttle.fail("2001:db8::1".parse().unwrap());
        throttle.fail("2001:db8::ffff".parse().unwrap());
        assert!(throttle
            .refused_for("2001:db8::42".parse().unwrap())
            .is_some());
        assert!(throttle
            .refused_for("2001:db8:0:1::1".parse().unwrap())
            .is_none());
    }
}
