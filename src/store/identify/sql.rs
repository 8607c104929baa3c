//! The identify statements, written once for both executors (SQLite takes `$1` placeholders).
//! The SQLite file runs each row through a cached single-row statement; PostgreSQL sends many
//! rows per statement, with `sqlx::QueryBuilder` putting the `values` list between the head
//! (`INSERT_…`) and the tail (`…_CONFLICT`) below.

/// Head of a log insert.
macro_rules! insert_call {
    () => {
        "insert into identify_call (call_id, caller, idempotency_key, user_id, traits, context, \
         account_created_at, response, request_digest, received_at) "
    };
}
/// A repeated (caller, idempotency key) is not logged; without a key a row never conflicts
/// (NULLs are distinct in a unique constraint).
macro_rules! call_conflict {
    () => {
        " on conflict (caller, idempotency_key) do nothing"
    };
}
/// Head of a profile insert.
macro_rules! insert_profile {
    () => {
        "insert into profile (user_id, created_at, created_at_source, updated_at, traits, \
         provenance) "
    };
}
/// A profile another transaction created first is left alone (the batch then runs again).
macro_rules! new_profile_conflict {
    () => {
        " on conflict (user_id) do nothing"
    };
}
/// A stored profile is overwritten with the merged one.
macro_rules! merged_profile_conflict {
    () => {
        " on conflict (user_id) do update set created_at = excluded.created_at, \
         created_at_source = excluded.created_at_source, updated_at = excluded.updated_at, \
         traits = excluded.traits, provenance = excluded.provenance"
    };
}
/// What a batch reads of a stored profile (after its `user_id`).
macro_rules! profile_columns {
    () => {
        "traits, provenance, created_at, created_at_source"
    };
}

pub(super) const INSERT_CALL: &str = insert_call!();
pub(super) const CALL_CONFLICT: &str = call_conflict!();
pub(super) const INSERT_PROFILE: &str = insert_profile!();
pub(super) const NEW_PROFILE_CONFLICT: &str = new_profile_conflict!();
pub(super) const MERGED_PROFILE_CONFLICT: &str = merged_profile_conflict!();

/// One log row.
pub(super) const INSERT_CALL_ROW: &str = concat!(
    insert_call!(),
    "values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    call_conflict!()
);
/// One new profile.
pub(super) const INSERT_NEW_PROFILE_ROW: &str = concat!(
    insert_profile!(),
    "values ($1, $2, $3, $4, $5, $6)",
    new_profile_conflict!()
);
/// One merged profile.
pub(super) const WRITE_MERGED_PROFILE_ROW: &str = concat!(
    insert_profile!(),
    "values ($1, $2, $3, $4, $5, $6)",
    merged_profile_conflict!()
);

/// The first call logged with a caller's idempotency key: its answer and request digest.
pub(super) const FIRST_CALL: &str = "select response, request_digest from identify_call \
     where caller = $1 and idempotency_key = $2";

/// One stored profile.
pub(super) const LOAD_PROFILE: &str = concat!(
    "select ",
    profile_columns!(),
    " from profile where user_id = $1"
);
/// Many stored profiles, locked in key order (so two batches never deadlock on them).
pub(super) const LOAD_PROFILES_LOCKED: &str = concat!(
    "select user_id, ",
    profile_columns!(),
    " from profile where user_id = any($1) order by user_id for update"
);
