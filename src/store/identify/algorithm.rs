//! The identify algorithm, written once: log the calls, find replays and reused keys, load
//! the profiles the others touch, merge in order, write in key order, commit; retry the batch
//! when the database says so. Each backend implements the seam below (`IdentifyDb`,
//! `IdentifyTx`): a rusqlite connection on a SQLite file (its futures are ready at once and
//! are driven by `block_on` on a blocking thread) and a PostgreSQL pool.

use uuid::Uuid;

use super::merge::Profile;
use super::{call_id, replay_of, FirstCall, IdentifyCall, IdentifyOutcome};
use crate::store::StoreError;

/// Attempts per batch.
const ATTEMPTS: u32 = 3;

/// A database identify batches run on: it begins the transaction of each attempt.
pub(super) trait IdentifyDb {
    type Error: Into<StoreError> + std::fmt::Display;
    type Tx<'t>: IdentifyTx<Error = Self::Error>
    where
        Self: 't;

    /// A write transaction (on SQLite, holding the write lock from the start).
    async fn begin(&mut self) -> Result<Self::Tx<'_>, Self::Error>;

    /// Whether an attempt that failed with `error` is worth another (a serialization failure
    /// or deadlock on PostgreSQL).
    fn is_retryable(error: &Self::Error) -> bool;
}

/// The database side of each step, inside one transaction; dropping it rolls back.
pub(super) trait IdentifyTx {
    type Error;

    /// Append the calls to the log, in order, with the given ids; for each call whether it
    /// was logged (`false`: its caller and idempotency key were logged before, by an earlier
    /// batch or earlier in this one).
    async fn log_calls(
        &mut self,
        calls: &[IdentifyCall],
        ids: &[Uuid],
    ) -> Result<Vec<bool>, Self::Error>;

    /// The first call logged with this caller and idempotency key.
    async fn first_call(&mut self, caller: &str, key: &str) -> Result<FirstCall, Self::Error>;

    /// The stored profiles of `users` (sorted, distinct), in the same order, `None` where there
    /// is none; locked until the transaction ends.
    async fn load_profiles(&mut self, users: &[&str]) -> Result<Vec<Option<Profile>>, Self::Error>;

    /// Insert new profiles (sorted by user id); returns how many were inserted: fewer when
    /// another transaction created one of them first.
    async fn insert_profiles(&mut self, profiles: &[(&str, &Profile)]) -> Result<u64, Self::Error>;

    /// Overwrite stored profiles with their merged state (sorted by user id).
    async fn update_profiles(&mut self, profiles: &[(&str, &Profile)]) -> Result<(), Self::Error>;

    async fn commit(self) -> Result<(), Self::Error>;
}

/// Profiles to write, with their user ids, in key order.
type ToWrite<'a> = Vec<(&'a str, &'a Profile)>;

/// Record `calls` in one transaction, in order; a later call in the batch sees the earlier
/// ones (same user, same idempotency key). Nothing is written if any step fails.
pub(super) async fn record_batch<D: IdentifyDb>(
    db: &mut D,
    calls: &[IdentifyCall],
) -> Result<Vec<IdentifyOutcome>, StoreError> {
    let ids: Vec<Uuid> = calls.iter().map(|c| call_id(c.received_at)).collect();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_record(db, calls, &ids).await {
            Ok(Some(outcomes)) => return Ok(outcomes),
            Ok(None) if attempt < ATTEMPTS => {
                tracing::debug!(attempt, "profile created concurrently, retrying");
            }
            Ok(None) => {
                return Err(StoreError::Conflict(
                    "profiles were created concurrently too often; giving up".into(),
                ))
            }
            Err(e) if attempt < ATTEMPTS && D::is_retryable(&e) => {
                tracing::debug!(attempt, error = %e, "identify batch retried");
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// One attempt; `Ok(None)` when another transaction created one of the new profiles first.
async fn try_record<D: IdentifyDb>(
    db: &mut D,
    calls: &[IdentifyCall],
    ids: &[Uuid],
) -> Result<Option<Vec<IdentifyOutcome>>, D::Error> {
    let mut tx = db.begin().await?;

    // 1. The log; a call whose key was logged before is a replay or a reused key.
    let logged = tx.log_calls(calls, ids).await?;
    let mut outcomes: Vec<Option<IdentifyOutcome>> = Vec::with_capacity(calls.len());
    for (call, logged) in calls.iter().zip(logged) {
        let key = call.idempotency_key.as_deref().filter(|_| !logged);
        outcomes.push(match key {
            Some(key) => Some(replay_of(call, tx.first_call(&call.caller, key).await?)),
            None => None,
        });
    }

    // 2. The profiles the logged calls touch, in key order.
    let mut users: Vec<&str> = calls
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_none())
        .map(|(call, _)| call.user_id.as_str())
        .collect();
    users.sort_unstable();
    users.dedup();
    let mut profiles = if users.is_empty() {
        Vec::new() // every call a replay or a reused key
    } else {
        tx.load_profiles(&users).await?
    };

    // 3. Apply the calls in order, in memory.
    for (call, outcome) in calls.iter().zip(outcomes.iter_mut()) {
        if outcome.is_some() {
            continue;
        }
        let i = users
            .binary_search(&call.user_id.as_str())
            .expect("every applied call's user is in `users`");
        let slot = &mut profiles[i];
        let created = slot.is_none();
        slot.get_or_insert_with(|| Profile::new_for(call))
            .merge(call);
        *outcome = Some(IdentifyOutcome::Applied { created });
    }

    // 4. Write them in key order: new profiles (losing a race to another transaction runs the
    //    batch again), then the merged ones.
    let (new, merged): (ToWrite, ToWrite) = users
        .iter()
        .zip(&profiles)
        .filter_map(|(user, p)| Some((*user, p.as_ref()?)))
        .partition(|(_, p)| p.is_new);
    if !new.is_empty() && tx.insert_profiles(&new).await? < new.len() as u64 {
        return Ok(None);
    }
    if !merged.is_empty() {
        tx.update_profiles(&merged).await?;
    }
    tx.commit().await?;
    Ok(Some(outcomes.into_iter().flatten().collect()))
}
