//! The profile store: profiles, identities, the transactional outbox and session links, on
//! SQLite (embedded default) or PostgreSQL (several replicas).
//!
//! One `Store` type wraps either pool. Almost all SQL is written once and run on whichever
//! pool is configured (sqlx's SQLite driver accepts `$1` placeholders): the `on_pool!` macro
//! expands one body for each backend, with `db` naming the backend module (`sqlite.rs` or
//! `postgres.rs`) that holds what truly differs: connecting, how a write transaction begins,
//! how a uuid is bound, which errors are worth a retry, and a few SQL strings.
//!
//! The Identify API's writes (`identify/`) are the exception: one algorithm over a small seam,
//! run on a connection of their own on a SQLite file (rusqlite, with the pool's pragmas) and
//! on the pool on PostgreSQL. An in-memory SQLite database is refused (it would be a second,
//! empty database for that connection).
//!
//! Timestamps are UTC and truncated to milliseconds before they are written, so both backends
//! give back exactly what was stored and SQLite's text timestamps sort in time order.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::{postgres::PgPool, sqlite::SqlitePool};
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
             and (lease_until is null or lease_until <= $3) and ($5 is null or sink = $5) \
             order by next_attempt_at, created_at limit $4 ",
            $lock,
            ") returning ",
            outbox_columns!()
        )
    };
}

mod dashboard;
mod error;
mod identify;
mod model;
mod outbox;
mod postgres;
mod retention;
mod session;
mod sign_in;
mod sqlite;
mod users;

pub use dashboard::{OutboxEvent, ReceivedCall, RecentSignIn};
pub use error::StoreError;
pub use identify::{request_digest, IdentifyCall, IdentifyOutcome};
pub use model::{
    Avatar, IdentityRecord, NewOutboxMessage, NewSession, OutboxMessage, OutboxStatus,
    ProfileSummary, SessionRow, SessionsOf, SignIn, SignInOutcome, SinkStats, SpentState,
    UserRecord,
};
pub use retention::Purge;
pub use session::{encode_record, record_user_id, SessionStore, SIGNED_IN_USER};
pub use sign_in::{Callback, OutboxFn, SessionFn};

/// The profile store. Cheap to clone: it holds a connection pool (and, on a SQLite file, the
/// Identify API's own writer connection).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// On a SQLite file: the Identify API's own connection (`identify/sqlite.rs`).
    identify_writer: Option<identify::IdentifyWriter>,
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
        StoreOptions {
            max_connections: None,
            acquire_timeout: std::time::Duration::from_secs(5),
        }
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
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connect to `sqlite://path/to.db` (file and parent directories are created; WAL,
    /// `synchronous = FULL`, foreign keys, 5 s busy timeout; an in-memory database is refused) or
    /// `postgres://…`, and run the migrations. Pool settings are the defaults of [`StoreOptions`].
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, &StoreOptions::default()).await
    }

    /// [`Store::connect`], but only to a database that exists: a SQLite file that is not there
    /// is [`StoreError::Missing`] (naming the absolute path), not a new empty database. For
    /// commands that look at or change existing data.
    pub async fn connect_existing(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            if let Some(path) = sqlite::file_path(url)? {
                if !path.is_file() {
                    return Err(StoreError::Missing { path });
                }
            }
        }
        Store::connect(url).await
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
        let mut store = Store {
            pool,
            identify_writer: None,
        };
        store.migrate().await?;
        if let Pool::Sqlite(pool) = &store.pool {
            let path = pool.connect_options().get_filename().to_path_buf();
            store.identify_writer = Some(identify::IdentifyWriter::open(&path)?);
        }
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
}

/// Truncate to milliseconds: what both backends store exactly.
pub(crate) fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
}

fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Other(format!("bad uuid {s:?} in database: {e}")))
}
