//! Integration tests against real HTTP servers (one test binary: `cargo test --test api`).

mod auth_throttle;
mod avatars;
mod cli;
mod dashboard;
mod dev_mode;
mod harness;
mod helpers;
mod identify;
mod identify_tokens;
mod idp;
mod idp_smoke;
mod microsoft_common;
mod outbox;
mod outbox_cli;
mod outbox_faults;
mod outbox_replicas;
mod pg;
mod profiles;
mod readiness;
mod replicas;
mod scale;
mod sessions;
mod sign_in;
mod sink;
mod traces;
mod webhooks;
