//! The profile store: profiles, identities, the transactional outbox and session links, on
//! SQLite (embedded default) or PostgreSQL (several replicas).
//!
//! One `Store` type wraps either pool. Almost all SQL is written once and run on whichever
//! pool is configured (sqlx's SQLite driver accepts `$1` placeholders): the `on_pool!` macro
//! expands one body for each backend, with `db` naming the backend module (`sqlite.rs` or
//! `postgres.rs`) that holds what truly differs: connecting, how a write transaction begins,
//! how a uuid is bound, which errors are worth a retry, and a few SQL strings.
//!
//! Timestamps are UTC and truncated to milliseconds before they are written, so both backends
//! give back exactly what was stored and SQLite's text timestamps sort in time order.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::{postgres::PgPool, sqlite::SqlitePool, types::Json};
use uuid::Uuid;

/// Expand `$body` once per backend, with `$pool` bound to the concrete pool and `$db` to the
/// backend module.
macro_rules! on_pool {
    ($store:expr, $pool:ident, $db:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => {
                // Not every body needs the backend module.
                #[allow(unused_imports)]
                use $crate::store::sqlite as $db;
                $body
            }
            $crate::store::Pool::Postgres($pool) => {
                #[allow(unused_imports)]
                use $crate::store::postgres as $db;
                $body
            }
        }
    };
}

/// The columns of an `OutboxRow`.
macro_rules! outbox_columns {
    () => {
        "cast(message_id as text) as message_id, sink, user_id, payload, attempts, created_at, \
         next_attempt_at, status, last_error"
    };
}

/// Claim due messages; `$lock` is the backend's row-locking clause.
macro_rules! claim_due_sql {
    ($lock:literal) => {
        concat!(
            "update outbox_message set lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
             where message_id in (select message_id from outbox_message \
             where status = 'pending' and next_attempt_at <= $3 \
             and (lease_until is null or lease_until <= $3) \
             order by next_attempt_at, created_at limit $4 ",
            $lock,
            ") returning ",
            outbox_columns!()
        )
    };
}

mod error;
mod model;
mod outbox;
mod postgres;
mod session;
mod sign_in;
mod sqlite;

pub use error::StoreError;
pub use model::{
    IdentityRecord, NewOutboxMessage, OutboxMessage, OutboxStatus, SignIn, SignInOutcome,
    SinkStats, UserRecord,
};
pub use session::SessionStore;
pub use sign_in::OutboxFn;

/// The profile store. Cheap to clone: it holds a connection pool.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Connection pool settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size; `None` means 8 for SQLite (one writer anyway) and 10 for PostgreSQL.
    pub max_connections: Option<u32>,
    /// How long a request waits for a connection before `StoreError::Unavailable` (a 503).
    pub acquire_timeout: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { max_connections: None, acquire_timeout: std::time::Duration::from_secs(5) }
    }
}

/// Which database a `Store` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend()).finish_non_exhaustive()
    }
}

impl Store {
    /// Connect to `sqlite://path/to.db` (file and parent directories are created; WAL,
    /// `synchronous = FULL`, foreign keys, 5 s busy timeout) or `postgres://…`, and run the
    /// migrations. Pool settings are the defaults of [`StoreOptions`].
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, &StoreOptions::default()).await
    }

    /// [`Store::connect`] with explicit pool settings.
    pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            Pool::Sqlite(sqlite::connect(url, options).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Pool::Postgres(postgres::connect(url, options).await?)
        } else {
            return Err(StoreError::Other(format!(
                "unsupported database URL {} (expected sqlite://… or postgres://…)",
                error::redact_url(url)
            )));
        };
        let store = Store { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Apply the embedded migrations of this backend and create the session table.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                sqlite::migrate(pool, pool.connect_options().get_filename()).await?
            }
            Pool::Postgres(pool) => postgres::migrate(pool).await?,
        }
        self.session_store().migrate().await
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool, db => {
            sqlx::query("select 1").execute(pool).await?;
        });
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Close the pool and wait for connections to finish (tests, shutdown).
    pub async fn close(&self) {
        on_pool!(self, pool, db => pool.close().await)
    }

    /// tower-sessions' store on the same database.
    pub fn session_store(&self) -> SessionStore {
        SessionStore::new(self.clone())
    }

    /// Remember that `session_id` (tower-sessions' id as a string) belongs to `user_id`, so
    /// `delete_user` can end it. An unknown user is a `Conflict`.
    pub async fn link_session(&self, user_id: &str, session_id: &str) -> Result<(), StoreError> {
        on_pool!(self, pool, db => {
            sqlx::query(
                "insert into user_session (session_id, user_id, created_at) values ($1, $2, $3) \
                 on conflict (session_id) do update set user_id = excluded.user_id",
            )
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
    pub async fn find_user_id(&self, issuer: &str, subject: &str) -> Result<Option<String>, StoreError> {
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
            identities: identities.into_iter().map(IdentityRow::into_record).collect::<Result<_, _>>()?,
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

    /// How many profiles exist (metrics, tests).
    pub async fn profile_count(&self) -> Result<i64, StoreError> {
        let n = on_pool!(self, pool, db => {
            sqlx::query_scalar("select count(*) from profile").fetch_one(pool).await?
        });
        Ok(n)
    }

    /// Drop session links whose session no longer exists (expired and deleted).
    pub async fn prune_user_sessions(&self) -> Result<u64, StoreError> {
        let n = on_pool!(self, pool, db => {
            sqlx::query(db::PRUNE_USER_SESSIONS).execute(pool).await?.rows_affected()
        });
        Ok(n)
    }
}

/// Truncate to milliseconds: what both backends store exactly.
pub(crate) fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
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

fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Other(format!("bad uuid {s:?} in database: {e}")))
}
