//! Sessions in the store's database: tower-sessions' sqlx stores behind one type.
//!
//! Tables are the crate's defaults: `tower_sessions` on SQLite, `"tower_sessions"."session"`
//! on PostgreSQL (`Store::delete_user` deletes from them by id).

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::{Pool, Store, StoreError};

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
    /// `save` and `load`.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let data = rmp_serde::to_vec(&*record)
                .map_err(|e| session_store::Error::Encode(e.to_string()))?;
            let inserted = on_pool!(self.store, pool, db => {
                sqlx::query(db::CREATE_SESSION)
                    .bind(record.id.to_string())
                    .bind(data)
                    .bind(record.expiry_date)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })
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
