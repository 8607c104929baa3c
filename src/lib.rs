//! identify-bridge: OpenID Connect sign-in, enrichment traits, profiles and identify calls.

pub mod config;
pub mod store;
