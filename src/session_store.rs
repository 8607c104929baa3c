//! The session store chosen by `session.store`: the database (default), Redis, or process memory;
//! and ending sessions in it (sign out everywhere, erasure, back-channel logout).
//!
//! Session reads are not cached: every request reads the shared store, so a session ended on
//! one replica (logout, erasure, back-channel logout) is refused by every replica at once.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store;
use tower_sessions::{MemoryStore, SessionStore};
use tower_sessions_redis_store::fred::prelude::{
    ClientLike, Config as RedisConfig, KeysInterface, Pool as RedisPool,
};
use tower_sessions_redis_store::fred::types::{Expiration, SetOptions};

use crate::config::{SessionStoreKind, Settings};
use crate::store::{self, SessionsOf, StoreError};

#[derive(Debug, Clone)]
pub enum AnySessionStore {
    /// Links a new signed-in session to its user in the same write.
    Database(store::SessionStore),
    /// The store links new signed-in sessions to their users (so erasure can end them).
    Memory(MemoryStore, store::Store),
    /// Sessions expire through Redis key TTLs.
    Redis(RedisSessions, store::Store),
}

impl AnySessionStore {
    /// The store `session.store` names (Redis is connected, and must answer).
    pub async fn from_settings(
        settings: &Settings,
        store: &store::Store,
    ) -> anyhow::Result<AnySessionStore> {
        Ok(match settings.session.store {
            SessionStoreKind::Database => AnySessionStore::Database(store.session_store()),
            SessionStoreKind::Memory => {
                AnySessionStore::Memory(MemoryStore::default(), store.clone())
            }
            SessionStoreKind::Redis => {
                let url = settings
                    .session
                    .redis_url
                    .as_ref()
                    .map(|u| u.expose().to_string())
                    .unwrap_or_default();
                AnySessionStore::redis(&url, store.clone()).await?
            }
        })
    }

    /// Whether session records live in the profile database (then the sign-in transaction
    /// writes them).
    pub fn in_database(&self) -> bool {
        matches!(self, AnySessionStore::Database(_))
    }

    /// End sessions everywhere they live: the database's rows and links, then this store's
    /// records (Redis, memory). Returns how many sessions were ended.
    pub async fn end(
        &self,
        store: &store::Store,
        which: SessionsOf<'_>,
    ) -> Result<usize, StoreError> {
        let ids = store.end_sessions(which).await?;
        let store = match self {
            AnySessionStore::Database(_) => return Ok(ids.len()),
            AnySessionStore::Memory(s, _) => s as &(dyn SessionStore + Sync),
            AnySessionStore::Redis(s, _) => s as &(dyn SessionStore + Sync),
        };
        for id in &ids {
            if let Ok(id) = id.parse::<Id>() {
                store
                    .delete(&id)
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("session store: {e}")))?;
            }
        }
        Ok(ids.len())
    }

    /// The right to erasure: every session of the user ended (database and Redis alike), then
    /// the profile erased (`Store::delete_user`). `false` if there was no such user.
    pub async fn erase_user(
        &self,
        store: &store::Store,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        self.end(store, SessionsOf::User(user_id)).await?;
        store.delete_user(user_id).await
    }

    /// Connect to Redis (`redis://host:port/db`); fails start-up when it cannot.
    pub async fn redis(url: &str, store: store::Store) -> anyhow::Result<AnySessionStore> {
        let config =
            RedisConfig::from_url(url).map_err(|e| anyhow::anyhow!("session.redis_url: {e}"))?;
        let pool = RedisPool::new(config, None, None, None, 4)
            .map_err(|e| anyhow::anyhow!("session.redis_url: {e}"))?;
        pool.init()
            .await
            .map_err(|e| anyhow::anyhow!("session.redis_url: cannot connect to Redis: {e}"))?;
        Ok(AnySessionStore::Redis(RedisSessions { pool }, store))
    }
}

#[async_trait]
impl SessionStore for AnySessionStore {
    /// A session the sign-in transaction already wrote (the callback marks it) keeps that
    /// transaction's id: in the database nothing more is written; Redis and memory store the
    /// record under that id (its link is written). Any other new signed-in session is linked
    /// to its user.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        if let Some(id) = crate::session::take_written_id(record) {
            let planned = id;
            record.id = id;
            match self {
                AnySessionStore::Database(_) => return Ok(()),
                AnySessionStore::Memory(s, _) => s.create(record).await?,
                AnySessionStore::Redis(s, _) => s.create(record).await?,
            }
            if record.id == planned {
                return Ok(());
            }
        }
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

/// Sessions in Redis: one key per session id holding its record, expiring with it (`EXAT`).
/// tower-sessions-redis-store's keys and commands, with the database store's record encoding
/// ([`store::encode_record`]), so a session holding a number loads.
#[derive(Debug, Clone)]
pub struct RedisSessions {
    pool: RedisPool,
}

impl RedisSessions {
    /// `SET` the record with `NX` (create: `false` when the id is taken) or `XX` (save).
    async fn set(&self, record: &Record, options: SetOptions) -> session_store::Result<bool> {
        let data = store::encode_record(record)?;
        let expire = Expiration::EXAT(record.expiry_date.unix_timestamp());
        self.pool
            .set(
                record.id.to_string(),
                data.as_slice(),
                Some(expire),
                Some(options),
                false,
            )
            .await
            .map_err(redis_error)
    }
}

fn redis_error(e: tower_sessions_redis_store::fred::error::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        while !self.set(record, SetOptions::NX).await? {
            record.id = Id::default();
        }
        Ok(())
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.set(record, SetOptions::XX).await.map(|_| ())
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let data: Option<Vec<u8>> = self.pool.get(id.to_string()).await.map_err(redis_error)?;
        data.map(|data| {
            rmp_serde::from_slice(&data).map_err(|e| session_store::Error::Decode(e.to_string()))
        })
        .transpose()
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let _: i64 = self.pool.del(id.to_string()).await.map_err(redis_error)?;
        Ok(())
    }
}
