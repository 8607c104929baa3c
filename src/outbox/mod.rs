//! The transactional outbox: identify messages written in the sign-in transaction (one row per
//! sink, each with its own `message_id` and retries), and the worker that delivers them.

pub mod message;

pub use message::{messages_for_sign_in, IdentifyMessage};
