//! identify-bridge: OpenID Connect sign-in for web apps, automatic profiles, enrichment traits
//! and durable identify calls.

pub mod config;
pub mod dev_idp;
pub mod error;
pub mod providers;
pub mod return_to;
pub mod routes;
pub mod session;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod traits;
