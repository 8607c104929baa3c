//! `record_identify_calls`: the Identify API's effect. Each call is appended to the
//! `identify_call` log (a repeated idempotency key answers the first call's response instead)
//! and creates or merges the profile. A whole batch is one transaction: the API's writer
//! groups concurrent calls so that many share one commit.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use super::{ms, Store, StoreError};

/// Attempts per batch; only PostgreSQL ever retries (see `postgres::is_retryable`).
const ATTEMPTS: u32 = 3;

/// One accepted identify call.
#[derive(Debug, Clone)]
pub struct IdentifyCall {
    /// Who sent it (`key:<hash prefix>` or `sub:<subject>`); scopes the idempotency key.
    pub caller: String,
    pub idempotency_key: Option<String>,
    pub user_id: String,
    /// As sent; a `null` value removes that trait from the profile.
    pub traits: Map<String, Value>,
    pub context: Option<Map<String, Value>>,
    /// The account's creation time, when the call gave one.
    pub account_created_at: Option<DateTime<Utc>>,
    /// What this call answers, kept for replays.
    pub response: Value,
    pub received_at: DateTime<Utc>,
}

/// What recording a call did.
#[derive(Debug, Clone, PartialEq)]
pub enum IdentifyOutcome {
    /// Logged and applied; `created` when the profile is new.
    Applied { created: bool },
    /// The idempotency key was seen before: nothing written, this is the first answer.
    Replayed(Value),
}

/// Where a trait set through the Identify API came from.
fn api_source() -> Value {
    json!({"source": "api:identify", "verified": false})
}

impl Store {
    /// Record `calls` in one transaction, in order; a later call in the batch sees the
    /// earlier ones (same user, same idempotency key). Nothing is written if any step fails.
    /// A new profile takes `created_at` from the call (else `received_at`), source `api`; an
    /// existing one gets the traits merged and `created_at` moved earlier, never later.
    #[tracing::instrument(skip_all, fields(calls = calls.len()))]
    pub async fn record_identify_calls(
        &self,
        calls: &[IdentifyCall],
    ) -> Result<Vec<IdentifyOutcome>, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_record_identify_calls(calls).await {
                Ok(outcomes) => return Ok(outcomes),
                Err(e) if attempt < ATTEMPTS && on_pool!(self, _p, db => db::is_retryable(&e)) => {
                    tracing::debug!(attempt, error = %e, "identify batch retried");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn try_record_identify_calls(
        &self,
        calls: &[IdentifyCall],
    ) -> Result<Vec<IdentifyOutcome>, sqlx::Error> {
        on_pool!(self, pool, db => {
            let mut tx = db::begin_write(pool).await?;
            let mut outcomes = Vec::with_capacity(calls.len());
            for c in calls {
                let received_at = ms(c.received_at);
                let logged = sqlx::query(
                    "insert into identify_call (call_id, caller, idempotency_key, user_id, traits, \
                     context, account_created_at, response, received_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     on conflict (caller, idempotency_key) do nothing",
                )
                .bind(db::uuid(Uuid::new_v4()))
                .bind(&c.caller)
                .bind(&c.idempotency_key)
                .bind(&c.user_id)
                .bind(Json(&c.traits))
                .bind(c.context.as_ref().map(Json))
                .bind(c.account_created_at.map(ms))
                .bind(Json(&c.response))
                .bind(received_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if logged == 0 {
                    let first: Json<Value> = sqlx::query_scalar(
                        "select response from identify_call where caller = $1 and idempotency_key = $2",
                    )
                    .bind(&c.caller)
                    .bind(&c.idempotency_key)
                    .fetch_one(&mut *tx)
                    .await?;
                    outcomes.push(IdentifyOutcome::Replayed(first.0));
                    continue;
                }

                let set: Map<String, Value> =
                    c.traits.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
                let provenance: Map<String, Value> = set.keys().map(|k| (k.clone(), api_source())).collect();
                let created = sqlx::query(
                    "insert into profile (user_id, created_at, created_at_source, updated_at, traits, provenance) \
                     values ($1, $2, 'api', $3, $4, $5) on conflict (user_id) do nothing",
                )
                .bind(&c.user_id)
                .bind(c.account_created_at.map(ms).unwrap_or(received_at))
                .bind(received_at)
                .bind(Json(&set))
                .bind(Json(&provenance))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !created {
                    let (Json(mut traits), Json(mut provenance), created_at): (
                        Json<Map<String, Value>>,
                        Json<Map<String, Value>>,
                        DateTime<Utc>,
                    ) = sqlx::query_as(db::SELECT_PROFILE_FOR_MERGE)
                        .bind(&c.user_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    for (k, v) in &c.traits {
                        if v.is_null() {
                            traits.remove(k);
                            provenance.remove(k);
                        } else {
                            traits.insert(k.clone(), v.clone());
                            provenance.insert(k.clone(), api_source());
                        }
                    }
                    let earlier = c.account_created_at.map(ms).filter(|t| *t < created_at);
                    sqlx::query(
                        "update profile set traits = $2, provenance = $3, updated_at = $4, \
                         created_at = case when $5 is null then created_at else $5 end, \
                         created_at_source = case when $5 is null then created_at_source else 'api' end \
                         where user_id = $1",
                    )
                    .bind(&c.user_id)
                    .bind(Json(&traits))
                    .bind(Json(&provenance))
                    .bind(received_at)
                    .bind(earlier)
                    .execute(&mut *tx)
                    .await?;
                }
                outcomes.push(IdentifyOutcome::Applied { created });
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }

    /// The logged identify calls of a user, oldest first, as `(idempotency_key, traits,
    /// context)` (tests, audits).
    pub async fn identify_calls(
        &self,
        user_id: &str,
    ) -> Result<Vec<(Option<String>, Value, Option<Value>)>, StoreError> {
        let rows: Vec<(Option<String>, Json<Value>, Option<Json<Value>>)> = on_pool!(self, pool, db => {
            sqlx::query_as(
                "select idempotency_key, traits, context from identify_call where user_id = $1 \
                 order by received_at, call_id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(k, t, c)| (k, t.0, c.map(|c| c.0))).collect())
    }
}
