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
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match &self.inner {
            Inner::Sqlite(s) => s.create(record).await,
            Inner::Postgres(s) => s.create(record).await,
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
