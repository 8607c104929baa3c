//! HTTP routes, one file per area.

pub mod admin;
pub mod assets;
pub mod auth;
pub mod avatars;
pub mod backchannel;
pub mod callback;
mod client_info;
pub mod health;
pub mod identify;
pub mod login;
pub mod logout;
pub mod me;
pub mod profile;
pub mod signed_in;
pub mod users;

use axum::Router;

use crate::state::AppState;

/// Every route of the service. `/login/*` and `/callback/*` are rate-limited per client IP;
/// the key-guarded routes (Identify API, admin API, dashboard) throttle failed authentication.
pub fn router(settings: &crate::config::Settings) -> Router<AppState> {
    let mut sign_in = Router::new()
        .merge(login::router())
        .merge(callback::router());
    if settings.rate_limit.login_per_minute > 0 {
        let limiter = crate::rate_limit::IpLimiter::new(
            settings.rate_limit.login_per_minute,
            settings.rate_limit.login_burst,
        );
        sign_in = sign_in.layer(axum::middleware::from_fn(move |req, next| {
            crate::rate_limit::limit_by_ip(limiter.clone(), req, next)
        }));
    }
    Router::new()
        .merge(sign_in)
        .merge(me::router(settings))
        .merge(logout::router())
        .merge(auth::router())
        .merge(backchannel::router())
        .merge(health::router())
        .merge(if settings.server.metrics_listen.is_none() {
            health::metrics_router()
        } else {
            Router::new()
        })
        .merge(key_guarded())
        .merge(assets::router())
        .merge(avatars::router())
        .merge(profile::router())
}

/// The routes that take a key, behind [`crate::auth_throttle`].
fn key_guarded() -> Router<AppState> {
    let throttle = crate::auth_throttle::AuthThrottle::default();
    Router::new()
        .merge(identify::router())
        .merge(users::router())
        .merge(admin::router())
        .layer(axum::middleware::from_fn(move |req, next| {
            crate::auth_throttle::throttle(throttle.clone(), req, next)
        }))
}
