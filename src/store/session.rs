//! Sessions in the store's database: tower-sessions' sqlx stores behind one type (their `load`
//! and `delete`; `create` and `save` are ours: the record's encoding, [`encode_record`], and
//! one statement that links signed-in sessions).
//!
//! Tables are the crate's defaults: `tower_sessions` on SQLite, `"tower_sessions"."session"`
//! on PostgreSQL (`Store::delete_user` deletes from them by id).

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use chrono::Utc;

use super::{ms, postgres, sqlite, users::LINK_SESSION, Pool, SessionsOf, Store, StoreError};

/// A `tower_sessions::SessionStore` on the same database as the profiles.
#[derive(Debug, Clone)]
pub struct SessionStore {
    inner: Inner,
    store: Store,
}

#[derive(Debug, Clone)]
enum Inner {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl SessionStore {
    pub(super) fn new(store: Store) -> SessionStore {
        let inner = match &store.pool {
            Pool::Sqlite(pool) => Inner::Sqlite(SqliteStore::new(pool.clone())),
            Pool::Postgres(pool) => Inner::Postgres(PostgresStore::new(pool.clone())),
        };
        SessionStore { inner, store }
    }

    /// Create the session table if it is missing.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.inner {
            Inner::Sqlite(s) => s.migrate().await?,
            Inner::Postgres(s) => s.migrate().await?,
        }
        Ok(())
    }
}

/// Key of the signed-in user in a session record (the record's layout is shared with
/// `session.rs`, which writes it; kept here so the store reads it without importing sessions).
pub const SIGNED_IN_USER: &str = "signed_in_user";

/// The signed-in user's id in a stored session record, if any (the session stores use it to
/// link a new signed-in session to its user, so erasure can end it).
pub fn record_user_id(record: &Record) -> Option<&str> {
    record.data.get(SIGNED_IN_USER)?.get("user_id")?.as_str()
}

/// A session record as stored (database and Redis): MessagePack with field names. serde_json
/// keeps numbers exact (`arbitrary_precision`), which serializes a number as a one-field struct;
/// the crates' encoding (`rmp_serde::to_vec`) writes a struct as an array, which reads back as a
/// list, so a session holding a number would not load. With names it reads back as the number.
/// Records in the crates' encoding (written before) still decode: `rmp_serde::from_slice`
/// reads both.
pub fn encode_record(record: &Record) -> session_store::Result<Vec<u8>> {
    rmp_serde::to_vec_named(record).map_err(|e| session_store::Error::Encode(e.to_string()))
}

#[async_trait]
impl tower_sessions::SessionStore for SessionStore {
    /// One `insert … on conflict do nothing` per attempt, a fresh id when the id is taken.
    /// (The crate's own `create` spends four round trips on this: begin, an existence check,
    /// the insert and commit.) Same table, columns and MessagePack encoding as the crate's
    /// `save` and `load`. A signed-in session (sign-in cycles the id, so its record is
    /// created) is linked to its user in the same write, so `delete_user` can end it.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let user_id = record_user_id(record).map(str::to_string);
        loop {
            let data = encode_record(record)?;
            let id = record.id.to_string();
            let inserted = match (&self.store.pool, &user_id) {
                (_, None) => on_pool!(self.store, pool, db => {
                    sqlx::query(db::CREATE_SESSION)
                        .bind(&id)
                        .bind(data)
                        .bind(record.expiry_date)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                }),
                (Pool::Postgres(pool), Some(user_id)) => {
                    sqlx::query(postgres::CREATE_LINKED_SESSION)
                        .bind(&id)
                        .bind(data)
                        .bind(record.expiry_date)
                        .bind(user_id)
                        .bind(ms(Utc::now()))
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                }
                (Pool::Sqlite(pool), Some(user_id)) => {
                    create_linked_sqlite(pool, &id, data, record.expiry_date, user_id).await
                }
            }
            .map_err(|e| session_store::Error::Backend(e.to_string()))?;
            if inserted == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    /// The crate's upsert, with this store's encoding.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = encode_record(record)?;
        on_pool!(self.store, pool, db => {
            sqlx::query(db::SAVE_SESSION)
                .bind(record.id.to_string())
                .bind(data)
                .bind(record.expiry_date)
                .execute(pool)
                .await
                .map(|_| ())
        })
        .map_err(|e| session_store::Error::Backend(e.to_string()))?;
        Ok(())
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        match &self.inner {
            Inner::Sqlite(s) => s.load(session_id).await,
            Inner::Postgres(s) => s.load(session_id).await,
        }
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        match &self.inner {
            Inner::Sqlite(s) => s.delete(session_id).await,
            Inner::Postgres(s) => s.delete(session_id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for SessionStore {
    /// Delete expired sessions, then the user links that pointed at them.
    async fn delete_expired(&self) -> session_store::Result<()> {
        match &self.inner {
            Inner::Sqlite(s) => s.delete_expired().await?,
            Inner::Postgres(s) => s.delete_expired().await?,
        }
        self.store
            .prune_user_sessions()
            .await
            .map_err(|e| session_store::Error::Backend(e.to_string()))?;
        Ok(())
    }
}

impl Store {
    /// End sessions: delete their rows here (database sessions) and their links; returns
    /// their ids, so a session store elsewhere (Redis, memory) deletes them too. One
    /// transaction.
    pub async fn end_sessions(&self, which: SessionsOf<'_>) -> Result<Vec<String>, StoreError> {
        let (condition, first, second) = match which {
            SessionsOf::User(user_id) => ("user_id = $1", user_id, None),
            SessionsOf::Sid { provider, sid } => {
                ("provider = $1 and sid = $2", provider, Some(sid))
            }
            SessionsOf::Subject { provider, subject } => {
                ("provider = $1 and subject = $2", provider, Some(subject))
            }
        };
        let ids = on_pool!(self, pool, db => {
            let mut tx = db::begin_write(pool).await?;
            let rows = format!(
                "delete from {} where id in (select session_id from user_session where {condition})",
                db::SESSION_TABLE
            );
            let mut query = sqlx::query(&rows).bind(first);
            if let Some(second) = second {
                query = query.bind(second);
            }
            query.execute(&mut *tx).await?;
            let links = format!("delete from user_session where {condition} returning session_id");
            let mut query = sqlx::query_scalar(&links).bind(first);
            if let Some(second) = second {
                query = query.bind(second);
            }
            let ids: Vec<String> = query.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            ids
        });
        Ok(ids)
    }

    /// Record a back-channel logout token as used (`token_hash`: a hash of provider and
    /// `jti`); `false` when it was used before (a replay).
    pub async fn spend_logout_token(
        &self,
        token_hash: &str,
        expires_at: chrono::DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = on_pool!(self, pool, _db => {
            sqlx::query(
                "insert into logout_token (token_hash, expires_at) values ($1, $2) \
                 on conflict (token_hash) do nothing",
            )
            .bind(token_hash)
            .bind(ms(expires_at))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Whether the profile still exists (a session of an erased profile is refused).
    pub async fn profile_exists(&self, user_id: &str) -> Result<bool, StoreError> {
        let found: Option<i32> = on_pool!(self, pool, _db => {
            sqlx::query_scalar("select 1 from profile where user_id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(found.is_some())
    }
}

/// SQLite has no data-modifying CTEs: the session row and its link in one transaction.
async fn create_linked_sqlite(
    pool: &sqlx::SqlitePool,
    id: &str,
    data: Vec<u8>,
    expiry_date: time::OffsetDateTime,
    user_id: &str,
) -> Result<u64, sqlx::Error> {
    let mut tx = sqlite::begin_write(pool).await?;
    let inserted = sqlx::query(sqlite::CREATE_SESSION)
        .bind(id)
        .bind(data)
        .bind(expiry_date)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if inserted == 1 {
        sqlx::query(LINK_SESSION)
            .bind(id)
            .bind(user_id)
            .bind(ms(Utc::now()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::Serialize;
    use serde_json::{json, Value};
    use tower_sessions::session::{Id, Record};

    use super::encode_record;

    #[test]
    fn a_record_holding_exact_numbers_reads_back_and_records_written_by_position_still_load() {
        let big: Value = serde_json::from_str("123456789012345678901234567890").unwrap();
        let user = json!({"user_id": "u1", "validated_at": 1_764_660_000, "big": big, "f": 1.5});
        let record = Record {
            id: Id::default(),
            data: HashMap::from([("signed_in_user".to_string(), user)]),
            expiry_date: time::OffsetDateTime::now_utc(),
        };
        let back: Record = rmp_serde::from_slice(&encode_record(&record).unwrap()).unwrap();
        assert_eq!(back.data, record.data);
        assert_eq!(
            back.data["signed_in_user"]["big"].to_string(),
            "123456789012345678901234567890"
        );
        // By position (the crates' `rmp_serde::to_vec`) an exact number becomes a list.
        let by_position: Record =
            rmp_serde::from_slice(&rmp_serde::to_vec(&record).unwrap()).unwrap();
        assert!(by_position.data["signed_in_user"]["validated_at"].is_array());

        // A record written by position before numbers were exact: its values are maps (a
        // `Value` object serializes as one) holding plain MessagePack numbers.
        #[derive(Serialize)]
        struct Old {
            id: Id,
            data: HashMap<&'static str, HashMap<&'static str, i64>>,
            expiry_date: time::OffsetDateTime,
        }
        let old = Old {
            id: record.id,
            data: HashMap::from([(
                "signed_in_user",
                HashMap::from([("validated_at", 1_764_660_000)]),
            )]),
            expiry_date: record.expiry_date,
        };
        let loaded: Record = rmp_serde::from_slice(&rmp_serde::to_vec(&old).unwrap()).unwrap();
        assert_eq!(
            loaded.data["signed_in_user"],
            json!({"validated_at": 1_764_660_000})
        );
    }
}
