//! identify-bridge: OpenID Connect sign-in for web apps, automatic profiles, enrichment traits
//! and durable identify calls.

pub mod access_policy;
pub mod admin_auth;
pub mod auth_throttle;
pub mod client_ip;
pub mod config;
pub mod dev;
pub mod dev_idp;
pub mod error;
pub mod hardening;
pub mod identify_api;
pub mod login_context;
pub mod logout_token;
pub mod metrics;
pub mod outbox;
pub mod pending_login;
pub mod providers;
pub mod rate_limit;
pub mod retention;
pub mod return_to;
pub mod revalidate;
pub mod routes;
pub mod sealed;
pub mod serve;
pub mod session;
pub mod session_store;
pub mod signin;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod traits;
