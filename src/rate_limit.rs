//! Per-client rate limits on `/login/*` and `/callback/*` (GCRA via `governor`). Each
//! replica keeps its own counters, so N replicas admit up to N times the rate in total.
//!
//! A client is an IPv4 address or an IPv6 /64 ([`ClientKey`]). Memory is bounded by pruning:
//! at most every [`PRUNE_EVERY`], clients whose limit has fully refilled are forgotten, so the
//! state holds only the clients seen within the refill time (`burst` / rate: 20 s at the
//! default 60 a minute, burst 20) plus that interval, about 57 bytes each (600,000 addresses
//! grew the process by 34 MB before pruning existed). So 600,000 new addresses a minute keep at
//! most ~300,000 entries (~17 MB), and the state empties once they stop.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::client_ip::ClientIp;
use crate::error::ErrorInfo;

/// Least time between two prunings of idle clients.
pub const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// Who a limit applies to: an IPv4 address, or the /64 network of an IPv6 address (a single
/// subscriber usually holds a whole /64, so rotating through it must not buy fresh limits).
/// An IPv4-mapped IPv6 address counts as its IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(_) => ClientKey(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => ClientKey(IpAddr::V6(Ipv6Addr::from(
                    u128::from(v6) & !((1u128 << 64) - 1),
                ))),
            },
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// A keyed limiter shared by the routes it guards.
#[derive(Clone)]
pub struct IpLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<ClientKey>>,
    started: Instant,
    /// When the last pruning ran, in milliseconds after `started`.
    pruned_at: Arc<AtomicU64>,
}

impl IpLimiter {
    /// `per_minute` requests per minute per client, with bursts up to `burst`.
    pub fn new(per_minute: u32, burst: u32) -> IpLimiter {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute.max(1)).expect("at least one"))
            .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least one"));
        IpLimiter {
            limiter: Arc::new(DefaultKeyedRateLimiter::keyed(quota)),
            started: Instant::now(),
            pruned_at: Arc::new(AtomicU64::new(0)),
        }
    }

    /// `Err(wait)` when `ip`'s client is over the limit. Prunes idle clients when due.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let now_ms = self.started.elapsed().as_millis() as u64;
        let last = self.pruned_at.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= PRUNE_EVERY.as_millis() as u64
            && self
                .pruned_at
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.prune();
        }
        self.limiter
            .check_key(&ClientKey::of(ip))
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forget clients whose limit has fully refilled (they are as if never seen).
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Clients currently remembered.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

/// Middleware: 429 (a page, or JSON under /api) with `Retry-After` past the limit.
pub async fn limit_by_ip(limiter: IpLimiter, request: Request, next: Next) -> Response {
    let Some(ClientIp(ip)) = request.extensions().get::<ClientIp>().copied() else {
        return next.run(request).await;
    };
    match limiter.check(ip) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            crate::metrics::rate_limited("login");
            // Logged once, by the error middleware, with this detail.
            let mut info = ErrorInfo::from_status(StatusCode::TOO_MANY_REQUESTS, String::new());
            info.reason = "rate_limited";
            info.detail = format!(
                "client {} over the login rate limit; retry after {secs} s",
                ClientKey::of(ip)
            );
            let mut response = info.into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_their_64_and_mapped_ipv4_is_ipv4() {
        let key = |s: &str| ClientKey::of(s.parse().unwrap()).to_string();
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:3::1"), "2001:db8:1:3::/64");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
    }

    #[test]
    fn addresses_of_one_ipv6_64_share_a_limit() {
        let limiter = IpLimiter::new(1, 1);
        assert!(limiter.check("2001:db8::1".parse().unwrap()).is_ok());
        assert!(limiter.check("2001:db8::2:3:4".parse().unwrap()).is_err());
        assert!(limiter.check("2001:db8:0:1::1".parse().unwrap()).is_ok());
        assert_eq!(limiter.len(), 2);
    }

    #[test]
    fn idle_clients_are_pruned_so_many_addresses_leave_no_state() {
        // 6,000 a minute with no burst: a client's limit refills in 10 ms.
        let limiter = IpLimiter::new(6000, 1);
        for i in 0..50_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(limiter.check(ip).is_ok());
        }
        assert_eq!(limiter.len(), 50_000);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !limiter.is_empty() {
            assert!(Instant::now() < deadline, "{} clients left", limiter.len());
            std::thread::sleep(Duration::from_millis(20));
            limiter.prune();
        }
    }
}
