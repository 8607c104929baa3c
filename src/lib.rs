//! identify-bridge: OpenID Connect sign-in for web apps, automatic profiles, enrichment traits
//! and durable identify calls.

pub mod client_ip;
pub mod config;
pub mod error;
pub mod identify_api;
pub mod metrics;
pub mod outbox;
pub mod providers;
pub mod return_to;
pub mod routes;
pub mod session;
pub mod session_store;
pub mod signin;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod traits;
