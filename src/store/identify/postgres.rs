//! The identify seam on PostgreSQL: a transaction from the pool, many rows per statement
//! (a batch is a handful of round trips whatever its size), profiles locked in key order.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{types::Json, PgPool, Postgres, QueryBuilder, Transaction};
use uuid::Uuid;

use super::algorithm::{IdentifyDb, IdentifyTx};
use super::merge::Profile;
use super::{sql, FirstCall, IdentifyCall};
use crate::store::{ms, postgres as db};

/// Rows per statement: well under PostgreSQL's 65,535 bound parameters.
const CHUNK: usize = 500;

impl IdentifyDb for PgPool {
    type Error = sqlx::Error;
    type Tx<'t> = Transaction<'static, Postgres>;

    /// Read committed: a profile created by a concurrent batch is caught by
    /// `on conflict do nothing` and the batch runs again.
    async fn begin(&mut self) -> Result<Self::Tx<'_>, sqlx::Error> {
        db::begin_write(self).await
    }

    fn is_retryable(error: &sqlx::Error) -> bool {
        db::is_retryable(error)
    }
}

impl IdentifyTx for Transaction<'static, Postgres> {
    type Error = sqlx::Error;

    async fn log_calls(
        &mut self,
        calls: &[IdentifyCall],
        ids: &[Uuid],
    ) -> Result<Vec<bool>, sqlx::Error> {
        let mut logged = Vec::with_capacity(calls.len());
        for (chunk, chunk_ids) in calls.chunks(CHUNK).zip(ids.chunks(CHUNK)) {
            let mut q = QueryBuilder::<Postgres>::new(sql::INSERT_CALL);
            q.push_values(chunk.iter().zip(chunk_ids), |mut row, (c, id)| {
                row.push_bind(*id)
                    .push_bind(&c.caller)
                    .push_bind(&c.idempotency_key)
                    .push_bind(&c.user_id)
                    .push_bind(db::json_text(&c.traits_json))
                    .push_bind(c.context_json.as_deref().map(db::json_text))
                    .push_bind(c.account_created_at.map(ms))
                    .push_bind(db::json_text(&c.response))
                    .push_bind(&c.request_digest)
                    .push_bind(ms(c.received_at));
            });
            q.push(sql::CALL_CONFLICT);
            if chunk.iter().all(|c| c.idempotency_key.is_none()) {
                // Without a key no row conflicts: no need to stream the ids back.
                q.build().execute(&mut **self).await?;
                logged.resize(logged.len() + chunk.len(), true);
                continue;
            }
            q.push(" returning call_id");
            let inserted: HashSet<Uuid> = q
                .build_query_scalar::<Uuid>()
                .fetch_all(&mut **self)
                .await?
                .into_iter()
                .collect();
            logged.extend(chunk_ids.iter().map(|id| inserted.contains(id)));
        }
        Ok(logged)
    }

    async fn first_call(&mut self, caller: &str, key: &str) -> Result<FirstCall, sqlx::Error> {
        let (response, request_digest): (Json<Value>, Option<String>) =
            sqlx::query_as(sql::FIRST_CALL)
                .bind(caller)
                .bind(key)
                .fetch_one(&mut **self)
                .await?;
        Ok(FirstCall {
            response: response.0.to_string(),
            request_digest,
        })
    }

    async fn load_profiles(&mut self, users: &[&str]) -> Result<Vec<Option<Profile>>, sqlx::Error> {
        type Row = (
            String,
            Json<Map<String, Value>>,
            Json<Map<String, Value>>,
            DateTime<Utc>,
            String,
        );
        let mut profiles: Vec<Option<Profile>> = users.iter().map(|_| None).collect();
        let rows: Vec<Row> = sqlx::query_as(sql::LOAD_PROFILES_LOCKED)
            .bind(users)
            .fetch_all(&mut **self)
            .await?;
        for (user_id, traits, provenance, created_at, source) in rows {
            if let Ok(i) = users.binary_search(&user_id.as_str()) {
                profiles[i] = Some(Profile::stored(traits.0, provenance.0, created_at, source));
            }
        }
        Ok(profiles)
    }

    async fn insert_profiles(&mut self, profiles: &[(&str, &Profile)]) -> Result<u64, sqlx::Error> {
        let mut inserted = 0;
        for chunk in profiles.chunks(CHUNK) {
            let mut q = profile_rows(chunk);
            q.push(sql::NEW_PROFILE_CONFLICT);
            inserted += q.build().execute(&mut **self).await?.rows_affected();
        }
        Ok(inserted)
    }

    async fn update_profiles(&mut self, profiles: &[(&str, &Profile)]) -> Result<(), sqlx::Error> {
        for chunk in profiles.chunks(CHUNK) {
            let mut q = profile_rows(chunk);
            q.push(sql::MERGED_PROFILE_CONFLICT);
            q.build().execute(&mut **self).await?;
        }
        Ok(())
    }

    async fn commit(self) -> Result<(), sqlx::Error> {
        Transaction::commit(self).await
    }
}

/// `insert into profile (…) values (…), (…)` for these profiles, without its conflict clause.
fn profile_rows<'a>(profiles: &'a [(&'a str, &'a Profile)]) -> QueryBuilder<'a, Postgres> {
    let mut q = QueryBuilder::<Postgres>::new(sql::INSERT_PROFILE);
    q.push_values(profiles, |mut row, (user_id, p)| {
        row.push_bind(*user_id)
            .push_bind(p.created_at)
            .push_bind(&p.created_at_source)
            .push_bind(p.updated_at)
            .push_bind(Json(&p.traits))
            .push_bind(Json(&p.provenance));
    });
    q
}
