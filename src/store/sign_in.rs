//! `record_sign_in`: identity → profile → traits → outbox rows, in one transaction.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{ms, NewOutboxMessage, SignIn, SignInOutcome, Store, StoreError};

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
    #[tracing::instrument(skip_all, fields(provider = %s.provider))]
    pub async fn record_sign_in(
        &self,
        s: &SignIn,
        outbox: &OutboxFn<'_>,
    ) -> Result<SignInOutcome, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.try_sign_in(s, outbox).await;
            match result {
                Ok(Some(outcome)) => return Ok(outcome),
                Ok(None) if attempt < ATTEMPTS => {
                    tracing::debug!(attempt, "identity created concurrently, retrying");
                }
                Ok(None) => {
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

    /// One attempt; `Ok(None)` when another transaction created this identity first.
    async fn try_sign_in(
        &self,
        s: &SignIn,
        outbox: &OutboxFn<'_>,
    ) -> Result<Option<SignInOutcome>, sqlx::Error> {
        let at = ms(s.at);
        let provider_created_at = s.provider_created_at.map(ms);
        on_pool!(self, pool, db => {
            let mut tx = db::begin_write(pool).await?;
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
                        return Ok(None);
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
            tx.commit().await?;
            Ok(Some(outcome))
        })
    }
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
}
