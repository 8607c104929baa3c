//! `record_sign_in`: identity → profile → traits → outbox rows, in one transaction.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::users::LINK_SESSION_FULL;
use super::{
    ms, NewOutboxMessage, NewSession, SignIn, SignInOutcome, SpentState, Store, StoreError,
};

/// Insert one outbox message on `$conn` (expanded inside `on_pool!`, so `$db` is the backend).
macro_rules! insert_outbox_message {
    ($db:ident, $conn:expr, $m:expr) => {
        sqlx::query(
            "insert into outbox_message (message_id, sink, user_id, payload, status, attempts, \
             next_attempt_at, created_at) values ($1, $2, $3, $4, 'pending', 0, $5, $5)",
        )
        .bind($db::uuid($m.message_id))
        .bind(&$m.sink)
        .bind(&$m.user_id)
        .bind(Json(&$m.payload))
        .bind(ms($m.created_at))
        .execute($conn)
        .await
    };
}
pub(super) use insert_outbox_message;

/// Attempts per sign-in; only PostgreSQL ever retries (see `postgres::is_retryable`).
const ATTEMPTS: u32 = 3;

/// The outbox closure: builds the identify messages for a sign-in from its outcome.
pub type OutboxFn<'a> = dyn Fn(&SignInOutcome) -> Vec<NewOutboxMessage> + Send + Sync + 'a;

/// The session closure: builds the signed-in session for a sign-in from its outcome.
pub type SessionFn<'a> = dyn Fn(&SignInOutcome) -> NewSession + Send + Sync + 'a;

/// What a callback's sign-in transaction writes besides the profile and outbox.
pub struct Callback<'a> {
    pub spent: &'a SpentState,
    pub session: &'a SessionFn<'a>,
}

impl Store {
    /// Record a verified sign-in in one transaction: find the identity by (issuer, subject);
    /// if it is new, link it to the profile with the same provider-verified email (only when
    /// `link_by_email`) or create a profile; then update traits, provenance, `updated_at`,
    /// `last_sign_in_at` and, when the provider's creation time is earlier, `created_at`
    /// (it never moves later); then insert the outbox messages `outbox` builds from the
    /// outcome. Nothing is written if any step fails.
    ///
    /// `outbox` may be called more than once (a PostgreSQL transaction that lost a race is
    /// retried); only the messages of the committed attempt are stored.
    pub async fn record_sign_in(
        &self,
        s: &SignIn,
        outbox: &OutboxFn<'_>,
    ) -> Result<SignInOutcome, StoreError> {
        self.sign_in_attempts(s, None, outbox).await
    }

    /// [`Store::record_sign_in`] for a callback: in the same transaction it also spends the
    /// callback's `state` (`StoreError::StateUsed`, and nothing written, when it was spent
    /// before) and writes the signed-in session the callback builds (its link to the user, and
    /// its record when sessions live in this database).
    pub async fn record_sign_in_once(
        &self,
        s: &SignIn,
        callback: &Callback<'_>,
        outbox: &OutboxFn<'_>,
    ) -> Result<SignInOutcome, StoreError> {
        self.sign_in_attempts(s, Some(callback), outbox).await
    }

    #[tracing::instrument(skip_all, fields(provider = %s.provider))]
    async fn sign_in_attempts(
        &self,
        s: &SignIn,
        callback: Option<&Callback<'_>>,
        outbox: &OutboxFn<'_>,
    ) -> Result<SignInOutcome, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.try_sign_in(s, callback, outbox).await;
            match result {
                Ok(Attempt::Done(outcome)) => return Ok(outcome),
                Ok(Attempt::StateUsed) => return Err(StoreError::StateUsed),
                Ok(Attempt::Raced) if attempt < ATTEMPTS => {
                    tracing::debug!(attempt, "identity created concurrently, retrying");
                }
                Ok(Attempt::Raced) => {
                    return Err(StoreError::Conflict(
                        "identity was created concurrently too often; giving up".into(),
                    ))
                }
                Err(e) if attempt < ATTEMPTS && self.is_retryable(&e) => {
                    tracing::debug!(attempt, error = %e, "sign-in transaction retried");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn is_retryable(&self, e: &sqlx::Error) -> bool {
        on_pool!(self, _pool, db => db::is_retryable(e))
    }

    /// One attempt.
    async fn try_sign_in(
        &self,
        s: &SignIn,
        callback: Option<&Callback<'_>>,
        outbox: &OutboxFn<'_>,
    ) -> Result<Attempt, sqlx::Error> {
        let at = ms(s.at);
        let provider_created_at = s.provider_created_at.map(ms);
        on_pool!(self, pool, db => {
            let mut tx = db::begin_write(pool).await?;
            if let Some(spent) = callback.map(|c| c.spent) {
                // First, so a concurrent replay waits on this row and then finds it taken.
                let inserted = sqlx::query(
                    "insert into login_state (state_hash, expires_at) values ($1, $2) \
                     on conflict (state_hash) do nothing",
                )
                .bind(&spent.state_hash)
                .bind(ms(spent.expires_at))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    return Ok(Attempt::StateUsed);
                }
            }
            // A returning identity is updated and found in one statement.
            let existing: Option<String> = sqlx::query_scalar(
                "update identity set provider = $3, email = $4, email_verified = $5, \
                 last_seen_at = $6 where issuer = $1 and subject = $2 returning user_id",
            )
            .bind(&s.issuer)
            .bind(&s.subject)
            .bind(&s.provider)
            .bind(&s.email)
            .bind(s.email_verified)
            .bind(at)
            .fetch_optional(&mut *tx)
            .await?;

            // `Some(created_at)` when this transaction created the profile with its final values.
            let mut created_here: Option<DateTime<Utc>> = None;
            let (user_id, first_sign_in, linked_by_email) = match existing {
                Some(user_id) => (user_id, false, false),
                None => {
                    // Linking trusts only emails the provider is authoritative for
                    // (`email_verified` on both sides; providers.md §6, nOAuth).
                    let linked: Option<String> = match &s.email {
                        Some(email) if s.link_by_email && s.email_verified => {
                            sqlx::query_scalar(
                                "select user_id from identity \
                                 where lower(email) = lower($1) and email_verified = true \
                                 order by first_seen_at, identity_id limit 1",
                            )
                            .bind(email)
                            .fetch_optional(&mut *tx)
                            .await?
                        }
                        _ => None,
                    };
                    let linked_by_email = linked.is_some();
                    let user_id = match linked {
                        Some(user_id) => user_id,
                        None => {
                            let user_id = Uuid::new_v4().to_string();
                            // A new profile is written once, with its final values: the
                            // provider's creation time when it is not later than now.
                            let (created_at, source) = match provider_created_at {
                                Some(p) if p <= at => (p, "provider"),
                                _ => (at, "first_seen"),
                            };
                            sqlx::query(
                                "insert into profile (user_id, created_at, created_at_source, \
                                 updated_at, last_sign_in_at, traits, provenance) \
                                 values ($1, $2, $3, $4, $4, $5, $6)",
                            )
                            .bind(&user_id)
                            .bind(created_at)
                            .bind(source)
                            .bind(at)
                            .bind(Json(&s.traits))
                            .bind(Json(&s.provenance))
                            .execute(&mut *tx)
                            .await?;
                            created_here = Some(created_at);
                            user_id
                        }
                    };
                    let inserted = sqlx::query(
                        "insert into identity (identity_id, user_id, provider, issuer, subject, \
                         email, email_verified, first_seen_at, last_seen_at) \
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                         on conflict (issuer, subject) do nothing",
                    )
                    .bind(db::uuid(Uuid::new_v4()))
                    .bind(&user_id)
                    .bind(&s.provider)
                    .bind(&s.issuer)
                    .bind(&s.subject)
                    .bind(&s.email)
                    .bind(s.email_verified)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if inserted == 0 {
                        // Lost the race for this identity: roll back (dropping `tx`) and retry.
                        return Ok(Attempt::Raced);
                    }
                    (user_id, !linked_by_email, linked_by_email)
                }
            };

            let created_at = match created_here {
                Some(created_at) => created_at,
                None => {
                    // Sign-in traits replace the keys they carry; keys set otherwise (the
                    // Identify API) stay. The row is locked first on PostgreSQL so a
                    // concurrent API write is not lost.
                    let lock_sql = format!("select traits, provenance from profile where user_id = $1 {}", db::ROW_LOCK);
                    let existing: Option<(Json<Value>, Json<Value>)> = sqlx::query_as(&lock_sql)
                        .bind(&user_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let (traits, provenance) = match existing {
                        Some((t, p)) => (merge_objects(t.0, &s.traits), merge_objects(p.0, &s.provenance)),
                        None => (s.traits.clone(), s.provenance.clone()),
                    };
                    sqlx::query_scalar(
                        "update profile set traits = $2, provenance = $3, updated_at = $4, \
                         last_sign_in_at = $4, \
                         created_at = case when $5 is not null and $5 <= created_at \
                             then $5 else created_at end, \
                         created_at_source = case when $5 is not null and $5 <= created_at \
                             then 'provider' else created_at_source end \
                         where user_id = $1 returning created_at",
                    )
                    .bind(&user_id)
                    .bind(Json(&traits))
                    .bind(Json(&provenance))
                    .bind(at)
                    .bind(provider_created_at)
                    .fetch_one(&mut *tx)
                    .await?
                }
            };

            if let Some(a) = &s.avatar {
                sqlx::query(
                    "insert into avatar (avatar_id, user_id, content_type, image, updated_at) \
                     values ($1, $2, $3, $4, $5) on conflict (avatar_id) do update \
                     set user_id = excluded.user_id, updated_at = excluded.updated_at",
                )
                .bind(&a.avatar_id)
                .bind(&user_id)
                .bind(&a.content_type)
                .bind(&a.image)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                sqlx::query("delete from avatar where user_id = $1 and avatar_id <> $2")
                    .bind(&user_id)
                    .bind(&a.avatar_id)
                    .execute(&mut *tx)
                    .await?;
            }

            let outcome = SignInOutcome { user_id, created_at, first_sign_in, linked_by_email };
            for m in outbox(&outcome) {
                insert_outbox_message!(db, &mut *tx, m)?;
            }
            if let Some(callback) = callback {
                let session = (callback.session)(&outcome);
                if let Some(row) = &session.record {
                    // A fresh random 128-bit id: a taken one is a conflict, not a retry.
                    let inserted = sqlx::query(db::CREATE_SESSION)
                        .bind(&session.session_id)
                        .bind(&row.data)
                        .bind(row.expiry_date)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if inserted == 0 {
                        return Err(sqlx::Error::Protocol("session id taken".into()));
                    }
                }
                sqlx::query(LINK_SESSION_FULL)
                    .bind(&session.session_id)
                    .bind(&outcome.user_id)
                    .bind(at)
                    .bind(&session.provider)
                    .bind(&session.subject)
                    .bind(&session.sid)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(Attempt::Done(outcome))
        })
    }

    /// Traits a re-validation read from the provider's fresh claims: in one transaction, the
    /// keys of `fresh` whose value differs from the profile's are written (with their
    /// `provenance`, `updated_at` set) and the outbox messages `outbox` builds from the outcome
    /// are inserted. Keys the sign-in took from a provider API (`graph:`, `users_api:`), which
    /// a re-validation does not read, and what the bridge observed itself (`bridge:`) are not
    /// compared. `Ok(None)`, and nothing written, when nothing changed or the profile is gone.
    #[tracing::instrument(skip_all)]
    pub async fn record_revalidated_traits(
        &self,
        user_id: &str,
        fresh: &Value,
        provenance: &Value,
        at: DateTime<Utc>,
        outbox: &OutboxFn<'_>,
    ) -> Result<Option<SignInOutcome>, StoreError> {
        let at = ms(at);
        Ok(on_pool!(self, pool, db => {
            let mut tx = db::begin_write(pool).await?;
            let lock_sql = format!(
                "select traits, provenance, created_at from profile where user_id = $1 {}",
                db::ROW_LOCK
            );
            let existing: Option<(Json<Value>, Json<Value>, DateTime<Utc>)> = sqlx::query_as(&lock_sql)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((Json(traits), Json(stored_provenance), created_at)) = existing else {
                return Ok(None);
            };
            let (changed, changed_provenance) = changed_traits(&traits, &stored_provenance, fresh, provenance);
            if changed.is_empty() {
                return Ok(None);
            }
            let traits = merge_objects(traits, &Value::Object(changed));
            let stored_provenance = merge_objects(stored_provenance, &Value::Object(changed_provenance));
            sqlx::query("update profile set traits = $2, provenance = $3, updated_at = $4 where user_id = $1")
                .bind(user_id)
                .bind(Json(&traits))
                .bind(Json(&stored_provenance))
                .bind(at)
                .execute(&mut *tx)
                .await?;
            let outcome = SignInOutcome {
                user_id: user_id.to_string(),
                created_at,
                first_sign_in: false,
                linked_by_email: false,
            };
            for m in outbox(&outcome) {
                insert_outbox_message!(db, &mut *tx, m)?;
            }
            tx.commit().await?;
            Some(outcome)
        }))
    }
}

/// How one sign-in transaction ended.
enum Attempt {
    Done(SignInOutcome),
    /// Another transaction created this identity first: retry.
    Raced,
    /// The callback's state was spent before: a replay.
    StateUsed,
}

/// The keys of `fresh` (with a value) that differ from `stored`, and their provenance; keys
/// from a provider API or observed by the bridge are left out (see
/// [`Store::record_revalidated_traits`]).
fn changed_traits(
    stored: &Value,
    stored_provenance: &Value,
    fresh: &Value,
    provenance: &Value,
) -> (
    serde_json::Map<String, Value>,
    serde_json::Map<String, Value>,
) {
    let source = |p: &Value, k: &str| {
        p.get(k)
            .and_then(|s| s.get("source"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let not_compared = |s: &str| {
        ["graph:", "users_api:", "bridge:"]
            .iter()
            .any(|p| s.starts_with(p))
    };
    let mut changed = serde_json::Map::new();
    let mut changed_provenance = serde_json::Map::new();
    for (k, v) in fresh.as_object().into_iter().flatten() {
        if v.is_null()
            || not_compared(&source(stored_provenance, k))
            || not_compared(&source(provenance, k))
            || stored.get(k) == Some(v)
        {
            continue;
        }
        changed.insert(k.clone(), v.clone());
        if let Some(p) = provenance.get(k) {
            changed_provenance.insert(k.clone(), p.clone());
        }
    }
    (changed, changed_provenance)
}

/// `base` with every key of `update` set (objects only; anything else is replaced).
fn merge_objects(base: Value, update: &Value) -> Value {
    match (base, update) {
        (Value::Object(mut b), Value::Object(u)) => {
            for (k, v) in u {
                b.insert(k.clone(), v.clone());
            }
            Value::Object(b)
        }
        (_, u) => u.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn sign_in_traits_replace_their_keys_and_keep_the_rest() {
        let merged = super::merge_objects(
            json!({"enrichment_city": "Old", "plan": "pro"}),
            &json!({"enrichment_city": "Austin", "enrichment_active_at": "t"}),
        );
        assert_eq!(
            merged,
            json!({"enrichment_city": "Austin", "plan": "pro", "enrichment_active_at": "t"})
        );
    }

    #[test]
    fn a_revalidation_compares_only_claim_traits_that_have_a_value() {
        let stored = json!({"enrichment_locale": "en-GB", "enrichment_title": "VP", "enrichment_active_at": "t0"});
        let stored_provenance = json!({
            "enrichment_locale": {"source": "claims:/locale", "verified": true},
            "enrichment_title": {"source": "users_api:/profile/title", "verified": true},
        });
        let fresh = json!({"enrichment_locale": "fr-FR", "enrichment_title": "CEO",
            "enrichment_active_at": "t1", "enrichment_city": null});
        let provenance = json!({
            "enrichment_locale": {"source": "claims:/locale", "verified": true},
            "enrichment_title": {"source": "claims:/title", "verified": true},
            "enrichment_active_at": {"source": "bridge:sign_in_time", "verified": true},
        });
        let (changed, changed_provenance) =
            super::changed_traits(&stored, &stored_provenance, &fresh, &provenance);
        assert_eq!(
            serde_json::Value::Object(changed),
            json!({"enrichment_locale": "fr-FR"})
        );
        assert_eq!(changed_provenance.len(), 1);
        let (unchanged, _) =
            super::changed_traits(&stored, &stored_provenance, &stored, &stored_provenance);
        assert!(unchanged.is_empty());
    }
}
