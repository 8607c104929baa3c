//! Profiles and their identities and sessions: reading, erasing, session links.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{ms, parse_uuid, IdentityRecord, ProfileSummary, Store, StoreError, UserRecord};

/// Link a session to a user (`$1` session id, `$2` user id, `$3` now).
pub(super) const LINK_SESSION: &str =
    "insert into user_session (session_id, user_id, created_at) values ($1, $2, $3) \
     on conflict (session_id) do update set user_id = excluded.user_id";

/// [`LINK_SESSION`] with the session's provider (`$4`), subject (`$5`) and `sid` (`$6`).
pub(super) const LINK_SESSION_FULL: &str =
    "insert into user_session (session_id, user_id, created_at, provider, subject, sid) \
     values ($1, $2, $3, $4, $5, $6)";

impl Store {
    /// Remember that `session_id` (tower-sessions' id as a string) belongs to `user_id`, so
    /// `delete_user` can end it. An unknown user is a `Conflict`.
    pub async fn link_session(&self, user_id: &str, session_id: &str) -> Result<(), StoreError> {
        on_pool!(self, pool, db => {
            sqlx::query(LINK_SESSION)
            .bind(session_id)
            .bind(user_id)
            .bind(ms(Utc::now()))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The session ids linked to a user (admin API, erasure checks).
    pub async fn user_sessions(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let ids = on_pool!(self, pool, db => {
            sqlx::query_scalar(
                "select session_id from user_session where user_id = $1 order by created_at, session_id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?
        });
        Ok(ids)
    }

    /// The id of the user an identity belongs to, if it has signed in before.
    pub async fn find_user_id(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError> {
        let user_id = on_pool!(self, pool, db => {
            sqlx::query_scalar("select user_id from identity where issuer = $1 and subject = $2")
                .bind(issuer)
                .bind(subject)
                .fetch_optional(pool)
                .await?
        });
        Ok(user_id)
    }

    /// A profile and its identities.
    pub async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        let (profile, identities) = on_pool!(self, pool, db => {
            let mut tx = pool.begin().await?;
            let profile: Option<ProfileRow> = sqlx::query_as(
                "select user_id, created_at, created_at_source, updated_at, last_sign_in_at, \
                 traits, provenance from profile where user_id = $1",
            )
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            let identities: Vec<IdentityRow> = sqlx::query_as(
                "select cast(identity_id as text) as identity_id, provider, issuer, subject, email, \
                 email_verified, first_seen_at, last_seen_at from identity where user_id = $1 \
                 order by first_seen_at, identity_id",
            )
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            (profile, identities)
        });
        let Some(p) = profile else { return Ok(None) };
        Ok(Some(UserRecord {
            user_id: p.user_id,
            created_at: p.created_at,
            created_at_source: p.created_at_source,
            updated_at: p.updated_at,
            last_sign_in_at: p.last_sign_in_at,
            traits: p.traits.0,
            provenance: p.provenance.0,
            identities: identities
                .into_iter()
                .map(IdentityRow::into_record)
                .collect::<Result<_, _>>()?,
        }))
    }

    /// The right to erasure, in one transaction: the profile, its identities, its session
    /// links, the tower-sessions rows of those sessions, and all its outbox messages (an
    /// identify call sent after erasure would recreate the person at the sink; delivered rows
    /// still hold their traits). `false` if there was no such user.
    pub async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError> {
        let deleted = on_pool!(self, pool, db => {
            let mut tx = db::begin_write(pool).await?;
            sqlx::query(db::DELETE_USER_SESSIONS).bind(user_id).execute(&mut *tx).await?;
            sqlx::query("delete from outbox_message where user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("delete from identify_call where user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            // identity and user_session go by `on delete cascade`.
            let n = sqlx::query("delete from profile where user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n > 0
        });
        Ok(deleted)
    }

    /// A re-hosted profile photo by id: `(content_type, bytes)`.
    pub async fn avatar(&self, avatar_id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let row = on_pool!(self, pool, _db => {
            sqlx::query_as("select content_type, image from avatar where avatar_id = $1")
                .bind(avatar_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    /// How many profiles exist (metrics, tests).
    pub async fn profile_count(&self) -> Result<i64, StoreError> {
        let n = on_pool!(self, pool, db => {
            sqlx::query_scalar("select count(*) from profile").fetch_one(pool).await?
        });
        Ok(n)
    }

    /// Profiles in `user_id` order after `after_user_id` (keyset paging, for replay), each
    /// with the email of its first identity that has one.
    pub async fn list_profiles(
        &self,
        after_user_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ProfileSummary>, StoreError> {
        let rows: Vec<SummaryRow> = on_pool!(self, pool, db => {
            sqlx::query_as(
                "select p.user_id, p.created_at, p.traits, \
                 (select i.email from identity i where i.user_id = p.user_id and i.email is not null \
                 order by i.first_seen_at, i.identity_id limit 1) as email \
                 from profile p where ($1 is null or p.user_id > $1) order by p.user_id limit $2",
            )
            .bind(after_user_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| ProfileSummary {
                user_id: r.user_id,
                created_at: r.created_at,
                traits: r.traits.0,
                email: r.email,
            })
            .collect())
    }

    /// Drop session links whose session no longer exists (expired and deleted).
    pub async fn prune_user_sessions(&self) -> Result<u64, StoreError> {
        let n = on_pool!(self, pool, db => {
            sqlx::query(db::PRUNE_USER_SESSIONS).execute(pool).await?.rows_affected()
        });
        Ok(n)
    }
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    user_id: String,
    created_at: DateTime<Utc>,
    traits: Json<serde_json::Value>,
    email: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ProfileRow {
    user_id: String,
    created_at: DateTime<Utc>,
    created_at_source: String,
    updated_at: DateTime<Utc>,
    last_sign_in_at: Option<DateTime<Utc>>,
    traits: Json<serde_json::Value>,
    provenance: Json<serde_json::Value>,
}

#[derive(sqlx::FromRow)]
struct IdentityRow {
    identity_id: String,
    provider: String,
    issuer: String,
    subject: String,
    email: Option<String>,
    email_verified: bool,
    first_seen_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
}

impl IdentityRow {
    fn into_record(self) -> Result<IdentityRecord, StoreError> {
        Ok(IdentityRecord {
            identity_id: parse_uuid(&self.identity_id)?,
            provider: self.provider,
            issuer: self.issuer,
            subject: self.subject,
            email: self.email,
            email_verified: self.email_verified,
            first_seen_at: self.first_seen_at,
            last_seen_at: self.last_seen_at,
        })
    }
}
