//! Integration tests against real HTTP servers (one test binary: `cargo test --test api`).

mod helpers;
mod idp;
mod idp_smoke;
mod identify;
mod microsoft_common;
mod readiness;
mod sign_in;
