//! Sessions in the store's database: tower-sessions' sqlx stores behind one type (their
//! `save`, `load` and `delete`; `create` is ours: one statement, and it links signed-in sessions).
//!
//! Tables are the crate's defaults: `tower_sessions` on SQLite, `"tower_sessions"."session"`
//! on PostgreSQL (`Store::delete_user` deletes from them by id).

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use chrono::Utc;

use super::{ms, postgres, sqlite, users::LINK_SESSION, Pool, Store, StoreError};

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

#[async_trait]
impl tower_sessions::SessionStore for SessionStore {
    /// One `insert … on conflict do nothing` per attempt, a fresh id when the id is taken.
    /// (The crate's own `create` spends four round trips on this: begin, an existence check,
    /// the insert and commit.) Same table, columns and MessagePack encoding as the crate's
    /// `save` and `load`. A signed-in session (sign-in cycles the id, so its record is
    /// created) is linked to its user in the same write, so `delete_user` can end it.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let user_id = crate::session::record_user_id(record).map(str::to_string);
        loop {
            let data = rmp_serde::to_vec(&*record)
                .map_err(|e| session_store::Error::Encode(e.to_string()))?;
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

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match &self.inner {
            Inner::Sqlite(s) => s.save(record).await,
            Inner::Postgres(s) => s.save(record).await,
        }
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
