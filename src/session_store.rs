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
    Database(store::SessionStore),
    Memory(MemoryStore),
    /// Sessions expire through Redis key TTLs.
    Redis(RedisStore<RedisPool>),
}

impl AnySessionStore {
    /// Connect to Redis (`redis://host:port/db`); fails start-up when it cannot.
    pub async fn redis(url: &str) -> anyhow::Result<AnySessionStore> {
        let config =
            RedisConfig::from_url(url).map_err(|e| anyhow::anyhow!("session.redis_url: {e}"))?;
        let pool = RedisPool::new(config, None, None, None, 4)
            .map_err(|e| anyhow::anyhow!("session.redis_url: {e}"))?;
        pool.init()
            .await
            .map_err(|e| anyhow::anyhow!("session.redis_url: cannot connect to Redis: {e}"))?;
        Ok(AnySessionStore::Redis(RedisStore::new(pool)))
    }
}

#[async_trait]
impl SessionStore for AnySessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            AnySessionStore::Database(s) => s.create(record).await,
            AnySessionStore::Memory(s) => s.create(record).await,
            AnySessionStore::Redis(s) => s.create(record).await,
        }
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            AnySessionStore::Database(s) => s.save(record).await,
            AnySessionStore::Memory(s) => s.save(record).await,
            AnySessionStore::Redis(s) => s.save(record).await,
        }
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            AnySessionStore::Database(s) => s.load(id).await,
            AnySessionStore::Memory(s) => s.load(id).await,
            AnySessionStore::Redis(s) => s.load(id).await,
        }
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            AnySessionStore::Database(s) => s.delete(id).await,
            AnySessionStore::Memory(s) => s.delete(id).await,
            AnySessionStore::Redis(s) => s.delete(id).await,
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
