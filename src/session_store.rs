//! The session store chosen by `session.store`: the database (default), Redis, or process memory.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion};
use tower_sessions::{MemoryStore, SessionStore};
use tower_sessions_redis_store::fred::prelude::{
    ClientLike, Config as RedisConfig, Pool as RedisPool,
};
use tower_sessions_redis_store::RedisStore;

use crate::store;

#[derive(Debug, Clone)]
pub enum AnySessionStore {
    /// Links a new signed-in session to its user in the same write.
    Database(store::SessionStore),
    /// The store links new signed-in sessions to their users (so erasure can end them).
    Memory(MemoryStore, store::Store),
    /// Sessions expire through Redis key TTLs.
    Redis(RedisStore<RedisPool>, store::Store),
}

impl AnySessionStore {
    /// Connect to Redis (`redis://host:port/db`); fails start-up when it cannot.
    pub async fn redis(url: &str, store: store::Store) -> anyhow::Result<AnySessionStore> {
        let config =
            RedisConfig::from_url(url).map_err(|e| anyhow::anyhow!("session.redis_url: {e}"))?;
        let pool = RedisPool::new(config, None, None, None, 4)
            .map_err(|e| anyhow::anyhow!("session.redis_url: {e}"))?;
        pool.init()
            .await
            .map_err(|e| anyhow::anyhow!("session.redis_url: cannot connect to Redis: {e}"))?;
        Ok(AnySessionStore::Redis(RedisStore::new(pool), store))
    }
}

#[async_trait]
impl SessionStore for AnySessionStore {
    /// A new signed-in session (sign-in cycles the id) is linked to its user.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let store = match self {
            AnySessionStore::Database(s) => return s.create(record).await,
            AnySessionStore::Memory(s, store) => {
                s.create(record).await?;
                store
            }
            AnySessionStore::Redis(s, store) => {
                s.create(record).await?;
                store
            }
        };
        if let Some(user_id) = crate::session::record_user_id(record) {
            store
                .link_session(user_id, &record.id.to_string())
                .await
                .map_err(|e| session_store::Error::Backend(e.to_string()))?;
        }
        Ok(())
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            AnySessionStore::Database(s) => s.save(record).await,
            AnySessionStore::Memory(s, _) => s.save(record).await,
            AnySessionStore::Redis(s, _) => s.save(record).await,
        }
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            AnySessionStore::Database(s) => s.load(id).await,
            AnySessionStore::Memory(s, _) => s.load(id).await,
            AnySessionStore::Redis(s, _) => s.load(id).await,
        }
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            AnySessionStore::Database(s) => s.delete(id).await,
            AnySessionStore::Memory(s, _) => s.delete(id).await,
            AnySessionStore::Redis(s, _) => s.delete(id).await,
        }
    }
}

impl AnySessionStore {
    /// Delete expired sessions every `period` until `stop` fires (database stores only).
    pub async fn delete_expired_until(
        self,
        period: std::time::Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let AnySessionStore::Database(store) = self else {
            return;
        };
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
            if let Err(e) = store.delete_expired().await {
                tracing::warn!(error = %e, "deleting expired sessions failed");
            }
        }
    }
}
