//! The transactional outbox: identify messages written in the sign-in transaction (one row per
//! sink, each with its own `message_id` and retries), and the worker that delivers them.
//!
//! `message` builds the sink-neutral payload, `format` shapes it for each kind of sink,
//! `credentials` obtains bearer tokens, `signing` signs requests (Standard Webhooks), `deliver`
//! sends one request and classifies the answer,
//! `worker` runs the claim–send–record loop, and `admin` backs the `outbox` commands.

pub mod admin;
pub mod credentials;
pub mod deliver;
pub mod format;
pub mod message;
pub mod signing;
pub mod worker;

pub use message::{messages_for_sign_in, IdentifyMessage};
pub use worker::Worker;
