//! PostgreSQL specifics: connecting, retryable errors, and the few SQL strings that differ.

use std::str::FromStr;

use sqlx::{
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
    Postgres, Transaction,
};
use uuid::Uuid;

use super::{error::redact_url, StoreError, StoreOptions};

pub(super) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// tower-sessions-sqlx-store's default PostgreSQL schema and table.
pub(super) const DELETE_USER_SESSIONS: &str = r#"delete from "tower_sessions"."session" where id in (select session_id from user_session where user_id = $1)"#;
/// tower-sessions-sqlx-store's session table.
pub(super) const SESSION_TABLE: &str = r#""tower_sessions"."session""#;
/// A new session row; no row when the id is taken (the caller picks another).
pub(super) const CREATE_SESSION: &str = r#"insert into "tower_sessions"."session" (id, data, expiry_date) values ($1, $2, $3) on conflict (id) do nothing"#;
/// `CREATE_SESSION` and the session's link to its user (`$4`, at `$5`) in one statement; no
/// row when the id is taken.
pub(super) const CREATE_LINKED_SESSION: &str = r#"with s as (insert into "tower_sessions"."session" (id, data, expiry_date) values ($1, $2, $3) on conflict (id) do nothing returning id) insert into user_session (session_id, user_id, created_at) select id, $4, $5 from s on conflict (session_id) do update set user_id = excluded.user_id"#;
/// A session row written or replaced (the session layer's `save`).
pub(super) const SAVE_SESSION: &str = r#"insert into "tower_sessions"."session" (id, data, expiry_date) values ($1, $2, $3) on conflict (id) do update set data = excluded.data, expiry_date = excluded.expiry_date"#;
pub(super) const PRUNE_USER_SESSIONS: &str = r#"delete from user_session where session_id not in (select id from "tower_sessions"."session")"#;
/// Up to `$2` sessions expired before `$1`.
pub(super) const PURGE_EXPIRED_SESSIONS: &str = r#"delete from "tower_sessions"."session" where id = any(array(select id from "tower_sessions"."session" where expiry_date < $1 limit $2))"#;
/// Replicas claim side by side: rows another transaction is claiming are skipped, not waited on.
pub(super) const CLAIM_DUE: &str = claim_due_sql!("for update skip locked");
/// Row locks for a read-modify-write (rows are read in key order, so lockers never deadlock).
pub(super) const ROW_LOCK: &str = "for update";

pub(super) async fn connect(url: &str, settings: &StoreOptions) -> Result<PgPool, StoreError> {
    // sqlx's parse errors can echo the URL, so only the redacted URL is shown.
    let options = PgConnectOptions::from_str(url)
        .map_err(|_| StoreError::Other(format!("invalid PostgreSQL URL {}", redact_url(url))))?;
    PgPoolOptions::new()
        .max_connections(settings.max_connections.unwrap_or(10))
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                redact_url(url)
            ))
        })
}

pub(super) async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    Ok(MIGRATOR.run(pool).await?)
}

/// Read committed; concurrent first sign-ins are resolved by `on conflict do nothing` + retry.
pub(super) async fn begin_write(
    pool: &PgPool,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    pool.begin().await
}

pub(super) fn uuid(id: Uuid) -> Uuid {
    id
}

/// Serialization failures, deadlocks and a lost race on a profile or identity key are worth
/// one more try: the next attempt sees the winner's committed row.
pub(super) fn is_retryable(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    match db.code().as_deref() {
        Some("40001") | Some("40P01") => true,
        Some("23505") => matches!(
            db.constraint(),
            Some("identity_issuer_subject_key") | Some("identity_pkey") | Some("profile_pkey")
        ),
        _ => false,
    }
}

/// JSON text encoded by the caller, for a `jsonb` column (a text parameter would not convert).
pub(super) fn json_text(text: &str) -> sqlx::types::Json<serde_json::Value> {
    sqlx::types::Json(serde_json::from_str(text).unwrap_or(serde_json::Value::Null))
}
