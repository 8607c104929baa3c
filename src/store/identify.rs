//! `record_identify_calls`: the Identify API's effect. Each call is appended to the
//! `identify_call` log (a repeated idempotency key answers the first call's response instead)
//! and creates or merges the profile. A whole batch is one transaction: the API's writer
//! groups concurrent calls so that many share one commit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use super::{ms, Store, StoreError};

/// Attempts per batch; only PostgreSQL ever retries (see `postgres::is_retryable`).
const ATTEMPTS: u32 = 3;

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

/// What a call whose idempotency key was logged before gets: the first answer when it asks
/// for the same thing (or the first call predates digests), else [`IdentifyOutcome::KeyReused`].
pub(super) fn replay_of(
    call: &IdentifyCall,
    first_response: String,
    first_digest: Option<String>,
) -> IdentifyOutcome {
    match first_digest {
        Some(digest) if digest != call.request_digest => IdentifyOutcome::KeyReused,
        _ => IdentifyOutcome::Replayed(first_response),
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

/// Where a trait set through the Identify API came from.
fn api_source() -> Value {
    json!({"source": "api:identify", "verified": false})
}

/// A time-ordered (version 7) id for a logged call: new rows land at the end of the primary
/// key index instead of on a random page each, which keeps the pages a group commit writes
/// (and fsyncs) few.
pub(super) fn call_id(received_at: DateTime<Utc>) -> Uuid {
    let millis = received_at.timestamp_millis().max(0) as u64;
    uuid::Builder::from_unix_timestamp_millis(millis, &rand::random()).into_uuid()
}

/// Rows per statement: well under both backends' limits on bound parameters.
const CHUNK: usize = 500;

/// A profile as the batch leaves it.
pub(super) struct Profile {
    pub(super) traits: Map<String, Value>,
    pub(super) provenance: Map<String, Value>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) created_at_source: String,
    pub(super) updated_at: DateTime<Utc>,
    /// Not in the database before this batch.
    pub(super) is_new: bool,
}

impl Profile {
    /// The profile a call creates: `created_at` from the call, else its receipt time.
    pub(super) fn new_for(c: &IdentifyCall) -> Profile {
        Profile {
            traits: Map::new(),
            provenance: Map::new(),
            created_at: c.account_created_at.map(ms).unwrap_or(ms(c.received_at)),
            created_at_source: "api".into(),
            updated_at: ms(c.received_at),
            is_new: true,
        }
    }

    /// Apply one call: `null` removes a trait, an earlier creation time moves `created_at`.
    /// A value the profile already holds keeps its provenance (the bridge's own identify call
    /// repeats the sign-in's traits, which must still show `claims:/…`): provenance changes
    /// only with the value.
    pub(super) fn merge(&mut self, c: &IdentifyCall) {
        for (k, v) in &c.traits {
            if v.is_null() {
                self.traits.remove(k);
                self.provenance.remove(k);
            } else if self.traits.get(k) != Some(v) || !self.provenance.contains_key(k) {
                self.traits.insert(k.clone(), v.clone());
                self.provenance.insert(k.clone(), api_source());
            }
        }
        if let Some(t) = c
            .account_created_at
            .map(ms)
            .filter(|t| *t < self.created_at)
        {
            self.created_at = t;
            self.created_at_source = "api".into();
        }
        self.updated_at = ms(c.received_at);
    }
}

impl Store {
    /// Record `calls` in one transaction, in order; a later call in the batch sees the
    /// earlier ones (same user, same idempotency key). Nothing is written if any step fails.
    /// A new profile takes `created_at` from the call (else `received_at`), source `api`; an
    /// existing one gets the traits merged and `created_at` moved earlier, never later.
    ///
    /// Set-based: a handful of statements per batch whatever its size (log rows, read the
    /// profiles, insert the new ones, update the others), so a big group commit stays cheap.
    pub async fn record_identify_calls(
        &self,
        calls: &[IdentifyCall],
    ) -> Result<Vec<IdentifyOutcome>, StoreError> {
        self.record_identify_batch(Arc::new(calls.to_vec())).await
    }

    /// [`Store::record_identify_calls`] for a batch the caller shares (and gets back whole
    /// once this returns, with `Arc::try_unwrap`). On a SQLite file this runs on the
    /// identify writer's own connection (`sqlite_identify`), elsewhere on the pool.
    #[tracing::instrument(skip_all, fields(calls = calls.len()))]
    pub async fn record_identify_batch(
        &self,
        calls: Arc<Vec<IdentifyCall>>,
    ) -> Result<Vec<IdentifyOutcome>, StoreError> {
        if let Some(writer) = &self.identify_writer {
            return writer.record(calls).await;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_record_identify_calls(&calls).await {
                Ok(Some(outcomes)) => return Ok(outcomes),
                Ok(None) if attempt < ATTEMPTS => {
                    tracing::debug!(attempt, "profile created concurrently, retrying");
                }
                Ok(None) => {
                    return Err(StoreError::Conflict(
                        "profiles were created concurrently too often; giving up".into(),
                    ))
                }
                Err(e) if attempt < ATTEMPTS && on_pool!(self, _p, db => db::is_retryable(&e)) => {
                    tracing::debug!(attempt, error = %e, "identify batch retried");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One attempt; `Ok(None)` when another transaction created one of the new profiles first.
    async fn try_record_identify_calls(
        &self,
        calls: &[IdentifyCall],
    ) -> Result<Option<Vec<IdentifyOutcome>>, sqlx::Error> {
        let ids: Vec<Uuid> = calls.iter().map(|c| call_id(c.received_at)).collect();
        on_pool!(self, pool, db => {
            let mut tx = db::begin_write(pool).await?;

            // 1. The log; a repeated (caller, idempotency key) is not inserted.
            let mut logged = HashSet::new();
            for (chunk, chunk_ids) in calls.chunks(CHUNK).zip(ids.chunks(CHUNK)) {
                let mut q = sqlx::QueryBuilder::<db::Db>::new(
                    "insert into identify_call (call_id, caller, idempotency_key, user_id, traits, \
                     context, account_created_at, response, request_digest, received_at) ",
                );
                q.push_values(chunk.iter().zip(chunk_ids), |mut b, (c, id)| {
                    b.push_bind(db::uuid(*id))
                        .push_bind(&c.caller)
                        .push_bind(&c.idempotency_key)
                        .push_bind(&c.user_id)
                        .push_bind(db::json_text(&c.traits_json))
                        .push_bind(c.context_json.as_deref().map(db::json_text))
                        .push_bind(c.account_created_at.map(ms))
                        .push_bind(db::json_text(&c.response))
                        .push_bind(&c.request_digest)
                        .push_bind(ms(c.received_at));
                });
                if chunk.iter().all(|c| c.idempotency_key.is_none()) {
                    // Without a key a row cannot conflict (NULLs are distinct in a unique
                    // constraint): every row is logged, no need to stream the ids back.
                    q.build().execute(&mut *tx).await?;
                    logged.extend(chunk_ids.iter().copied());
                    continue;
                }
                q.push(" on conflict (caller, idempotency_key) do nothing returning cast(call_id as text)");
                let rows: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await?;
                logged.extend(rows.iter().filter_map(|r| Uuid::parse_str(r).ok()));
            }
            let mut outcomes = Vec::with_capacity(calls.len());
            for (c, id) in calls.iter().zip(&ids) {
                if logged.contains(id) {
                    outcomes.push(None);
                    continue;
                }
                let (first, digest): (Json<Value>, Option<String>) = sqlx::query_as(
                    "select response, request_digest from identify_call \
                     where caller = $1 and idempotency_key = $2",
                )
                .bind(&c.caller)
                .bind(&c.idempotency_key)
                .fetch_one(&mut *tx)
                .await?;
                outcomes.push(Some(replay_of(c, first.0.to_string(), digest)));
            }

            // 2. The profiles these calls touch, locked in key order.
            let mut users: Vec<&str> = calls
                .iter()
                .zip(&outcomes)
                .filter(|(_, o)| o.is_none())
                .map(|(c, _)| c.user_id.as_str())
                .collect();
            users.sort_unstable();
            users.dedup();
            let mut profiles: HashMap<String, Profile> = HashMap::with_capacity(users.len());
            for chunk in users.chunks(CHUNK) {
                let mut q = sqlx::QueryBuilder::<db::Db>::new(
                    "select user_id, traits, provenance, created_at, created_at_source from profile \
                     where user_id in (",
                );
                let mut list = q.separated(", ");
                for u in chunk {
                    list.push_bind(*u);
                }
                q.push(") order by user_id ").push(db::ROW_LOCK);
                type Row = (String, Json<Map<String, Value>>, Json<Map<String, Value>>, DateTime<Utc>, String);
                let rows: Vec<Row> = q.build_query_as().fetch_all(&mut *tx).await?;
                for (user_id, traits, provenance, created_at, created_at_source) in rows {
                    let p = Profile {
                        traits: traits.0,
                        provenance: provenance.0,
                        created_at,
                        created_at_source,
                        updated_at: created_at,
                        is_new: false,
                    };
                    profiles.insert(user_id, p);
                }
            }

            // 3. Apply the calls in order, in memory.
            for (c, outcome) in calls.iter().zip(outcomes.iter_mut()) {
                if outcome.is_some() {
                    continue;
                }
                let created = !profiles.contains_key(&c.user_id);
                let p = profiles
                    .entry(c.user_id.clone())
                    .or_insert_with(|| Profile::new_for(c));
                p.merge(c);
                *outcome = Some(IdentifyOutcome::Applied { created });
            }

            // 4. Write: new profiles (losing a race to another replica retries the batch),
            //    then the merged ones.
            let mut sorted: Vec<(&String, &Profile)> = profiles.iter().collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for is_new in [true, false] {
                let rows: Vec<&(&String, &Profile)> = sorted.iter().filter(|(_, p)| p.is_new == is_new).collect();
                for chunk in rows.chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::<db::Db>::new(
                        "insert into profile (user_id, created_at, created_at_source, updated_at, traits, provenance) ",
                    );
                    q.push_values(chunk, |mut b, (user_id, p)| {
                        b.push_bind(*user_id)
                            .push_bind(p.created_at)
                            .push_bind(&p.created_at_source)
                            .push_bind(p.updated_at)
                            .push_bind(Json(&p.traits))
                            .push_bind(Json(&p.provenance));
                    });
                    if is_new {
                        q.push(" on conflict (user_id) do nothing");
                        let inserted = q.build().execute(&mut *tx).await?.rows_affected();
                        if inserted < chunk.len() as u64 {
                            return Ok(None);
                        }
                    } else {
                        q.push(
                            " on conflict (user_id) do update set created_at = excluded.created_at, \
                             created_at_source = excluded.created_at_source, updated_at = excluded.updated_at, \
                             traits = excluded.traits, provenance = excluded.provenance",
                        );
                        q.build().execute(&mut *tx).await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(Some(outcomes.into_iter().flatten().collect()))
        })
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
