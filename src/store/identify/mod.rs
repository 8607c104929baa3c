//! `record_identify_calls`: the Identify API's effect. Each call is appended to the
//! `identify_call` log (a repeated idempotency key answers the first call's response instead)
//! and creates or merges the profile. A whole batch is one transaction: the API's writer
//! groups concurrent calls so that many share one commit.
//!
//! - `algorithm.rs`: the steps of a batch, once, over a small seam (`IdentifyDb`, `IdentifyTx`).
//! - `merge.rs`: the pure part: what one call does to a profile.
//! - `sql.rs`: the statements, one text each for both databases.
//! - `sqlite.rs`: the seam on a SQLite file: the identify writer's own rusqlite connection.
//! - `postgres.rs`: the seam on PostgreSQL: a pool transaction, many rows per statement.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use super::{Pool, Store, StoreError};

mod algorithm;
mod merge;
mod postgres;
mod sql;
mod sqlite;

pub(super) use sqlite::IdentifyWriter;

/// One accepted identify call. The JSON it stores is encoded by the request that sent it
/// (`traits_json`, `context_json`, `response`), so the single writer only binds text.
#[derive(Debug, Clone)]
pub struct IdentifyCall {
    /// Who sent it (`key:<hash prefix>` or `sub:<subject>`); scopes the idempotency key.
    pub caller: String,
    pub idempotency_key: Option<String>,
    pub user_id: String,
    /// As sent; a `null` value removes that trait from the profile.
    pub traits: Map<String, Value>,
    /// `traits` as JSON text (what the log stores).
    pub traits_json: String,
    /// The call's `context` as JSON text.
    pub context_json: Option<String>,
    /// The account's creation time, when the call gave one.
    pub account_created_at: Option<DateTime<Utc>>,
    /// What this call answers (JSON text), kept for replays.
    pub response: String,
    /// What the call asked for ([`request_digest`]): a repeat of its idempotency key with
    /// another digest is refused, not replayed.
    pub request_digest: String,
    pub received_at: DateTime<Utc>,
}

/// The SHA-256 (hex) of what a call asks for: its `user_id`, traits and context (as compact
/// JSON, keys sorted) and account creation time. Equal for a retry of the same request,
/// whatever its whitespace or key order, or a `timestamp` left out.
pub fn request_digest(
    user_id: &str,
    traits_json: &str,
    context_json: Option<&str>,
    account_created_at: Option<DateTime<Utc>>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    // Each part length-prefixed, so no two requests hash the same text.
    let created = account_created_at.map(|t| t.timestamp_millis().to_string());
    for part in [
        Some(user_id),
        Some(traits_json),
        context_json,
        created.as_deref(),
    ] {
        match part {
            Some(text) => hash.update(format!("{}:{text}", text.len())),
            None => hash.update("-"),
        }
    }
    hex::encode(hash.finalize())
}

/// The first call logged with an idempotency key, as a repeat of the key needs it.
struct FirstCall {
    /// Its answer (JSON text).
    response: String,
    /// What it asked for; `None` for a call logged before digests were kept.
    request_digest: Option<String>,
}

/// What a call whose idempotency key was logged before gets: the first answer when it asks
/// for the same thing (or the first call predates digests), else [`IdentifyOutcome::KeyReused`].
fn replay_of(call: &IdentifyCall, first: FirstCall) -> IdentifyOutcome {
    match first.request_digest {
        Some(digest) if digest != call.request_digest => IdentifyOutcome::KeyReused,
        _ => IdentifyOutcome::Replayed(first.response),
    }
}

/// What recording a call did.
#[derive(Debug, Clone, PartialEq)]
pub enum IdentifyOutcome {
    /// Logged and applied; `created` when the profile is new.
    Applied { created: bool },
    /// The idempotency key was seen before: nothing written, this is the first answer (JSON
    /// text, as stored).
    Replayed(String),
    /// The idempotency key was first used with a different request: nothing written.
    KeyReused,
}

/// A time-ordered (version 7) id for a logged call: new rows land at the end of the primary
/// key index instead of on a random page each, which keeps the pages a group commit writes
/// (and fsyncs) few.
fn call_id(received_at: DateTime<Utc>) -> Uuid {
    let millis = received_at.timestamp_millis().max(0) as u64;
    uuid::Builder::from_unix_timestamp_millis(millis, &rand::random()).into_uuid()
}

impl Store {
    /// Record `calls` in one transaction, in order; a later call in the batch sees the
    /// earlier ones (same user, same idempotency key). Nothing is written if any step fails.
    /// A new profile takes `created_at` from the call (else `received_at`), source `api`; an
    /// existing one gets the traits merged and `created_at` moved earlier, never later.
    pub async fn record_identify_calls(
        &self,
        calls: &[IdentifyCall],
    ) -> Result<Vec<IdentifyOutcome>, StoreError> {
        self.record_identify_batch(Arc::new(calls.to_vec())).await
    }

    /// [`Store::record_identify_calls`] for a batch the caller shares (and gets back whole
    /// once this returns, with `Arc::try_unwrap`). The same algorithm (`algorithm.rs`) runs on
    /// either database: on a SQLite file on the identify writer's own connection, on
    /// PostgreSQL on the pool.
    #[tracing::instrument(skip_all, fields(calls = calls.len()))]
    pub async fn record_identify_batch(
        &self,
        calls: Arc<Vec<IdentifyCall>>,
    ) -> Result<Vec<IdentifyOutcome>, StoreError> {
        match (&self.pool, &self.identify_writer) {
            (Pool::Postgres(pool), _) => algorithm::record_batch(&mut pool.clone(), &calls).await,
            (Pool::Sqlite(_), Some(writer)) => writer.record(calls).await,
            (Pool::Sqlite(_), None) => Err(StoreError::Other(
                "this SQLite store has no identify writer".into(),
            )),
        }
    }

    /// The logged identify calls of a user, oldest first, as `(idempotency_key, traits,
    /// context)` (tests, audits).
    pub async fn identify_calls(
        &self,
        user_id: &str,
    ) -> Result<Vec<(Option<String>, Value, Option<Value>)>, StoreError> {
        type Row = (Option<String>, Json<Value>, Option<Json<Value>>);
        let rows: Vec<Row> = on_pool!(self, pool, db => {
            sqlx::query_as(
                "select idempotency_key, traits, context from identify_call where user_id = $1 \
                 order by received_at, call_id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(k, t, c)| (k, t.0, c.map(|c| c.0)))
            .collect())
    }
}
