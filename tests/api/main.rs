//! Integration tests against real HTTP servers (one test binary: `cargo test --test api`).

mod idp;
mod idp_smoke;
