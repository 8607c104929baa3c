//! Integration tests against real HTTP servers (one test binary: `cargo test --test api`).

mod helpers;
mod idp;
mod idp_smoke;
mod identify;
mod microsoft_common;
mod pg;
mod profiles;
mod readiness;
mod replicas;
mod sign_in;
