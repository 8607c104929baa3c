//! Profile store tests. Every test in `store_tests!` runs twice: on a fresh SQLite file and
//! on a fresh PostgreSQL database (`ib_test_<uuid>`, dropped afterwards). The identify stories
//! (`identify.rs`) are the conformance suite of the identify algorithm's executors: on a
//! SQLite file they run on the identify writer's rusqlite connection, on PostgreSQL on the pool.
//!
//! PostgreSQL: `DATABASE_URL_PG`, else `postgres://postgres@127.0.0.1:5432/test`, else user
//! `root`. If none answers, the PostgreSQL tests fail; set `IDENTIFY_BRIDGE_SKIP_POSTGRES=1`
//! to skip them on purpose.

use std::{collections::HashSet, future::Future, panic::AssertUnwindSafe, time::Duration};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures::FutureExt;
use identify_bridge::config::Settings;
use identify_bridge::retention::{self, Plan};
use identify_bridge::store::{
    Backend, Callback, IdentifyCall, IdentifyOutcome, NewOutboxMessage, NewSession, OutboxStatus,
    Purge, SignIn, SignInOutcome, SpentState, Store, StoreError,
};
use serde_json::json;
use sqlx::postgres::PgPool;
use tokio_util::sync::CancellationToken;
use tower_sessions::{
    session::{Id, Record},
    session_store::ExpiredDeletion,
    SessionStore as _,
};
use uuid::Uuid;

#[path = "store/identify.rs"]
mod identify;
use identify::*;

// ---------------------------------------------------------------- harness

async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/store.db").display());
    let store = Store::connect(&url).await.expect("open SQLite store");
    assert_eq!(store.backend(), Backend::Sqlite);
    test(store.clone()).await;
    store.close().await;
}

async fn admin_pool() -> (PgPool, url::Url) {
    let candidates: Vec<String> = match std::env::var("DATABASE_URL_PG") {
        Ok(url) => vec![url],
        Err(_) => vec![
            "postgres://postgres@127.0.0.1:5432/test".into(),
            "postgres://root@127.0.0.1:5432/test".into(),
        ],
    };
    let mut errors = Vec::new();
    for url in &candidates {
        match PgPool::connect(url).await {
            Ok(pool) => return (pool, url::Url::parse(url).unwrap()),
            Err(e) => errors.push(format!("{url}: {e}")),
        }
    }
    panic!(
        "PostgreSQL is not reachable ({}). Start it, set DATABASE_URL_PG, or set \
         IDENTIFY_BRIDGE_SKIP_POSTGRES=1 to skip the PostgreSQL tests",
        errors.join("; ")
    );
}

async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    if std::env::var("IDENTIFY_BRIDGE_SKIP_POSTGRES").as_deref() == Ok("1") {
        eprintln!("IDENTIFY_BRIDGE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let (admin, mut url) = admin_pool().await;
    let name = format!("ib_test_{}", Uuid::new_v4().simple());
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await
        .unwrap();
    url.set_path(&name);
    let store = Store::connect(url.as_str())
        .await
        .expect("open PostgreSQL store");
    assert_eq!(store.backend(), Backend::Postgres);
    let outcome = AssertUnwindSafe(test(store.clone())).catch_unwind().await;
    store.close().await;
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Generate `sqlite::name` and `postgres::name` for each shared test.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::with_sqlite(super::$name).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::with_postgres(super::$name).await }
            )*
        }
    };
}

store_tests!(
    first_sign_in_creates_profile_and_identity,
    second_sign_in_keeps_user_id_and_created_at_and_updates_traits,
    provider_created_at_moves_created_at_earlier_never_later,
    fifty_concurrent_first_sign_ins_create_one_profile,
    link_by_email_off_keeps_profiles_apart,
    link_by_email_on_links_only_verified_emails,
    delete_user_removes_profile_identities_sessions_and_messages,
    outbox_messages_are_written_in_the_sign_in_transaction,
    failed_outbox_insert_rolls_back_the_whole_sign_in,
    two_owners_never_claim_the_same_message,
    expired_leases_come_back,
    mark_transitions_and_dead_letters,
    released_claims_are_claimable_again,
    outbox_stats_count_per_sink,
    reconnecting_keeps_data_and_migrations_are_idempotent,
    expired_sessions_and_their_links_are_deleted,
    a_closed_store_is_unavailable,
    a_spent_state_refuses_a_second_sign_in_and_writes_nothing,
    // The identify conformance suite (identify.rs).
    an_identify_call_creates_a_profile_and_logs_the_call,
    identify_calls_merge_traits_and_null_removes_one,
    a_repeated_idempotency_key_replays_the_first_answer_and_writes_nothing,
    an_idempotency_key_reused_for_another_request_is_refused_and_writes_nothing,
    a_batch_with_one_user_many_times_applies_its_calls_in_order,
    a_key_repeated_inside_a_batch_replays_or_is_refused_there,
    account_created_at_starts_a_profile_and_moves_it_only_earlier,
    an_identify_call_repeating_a_value_keeps_its_provenance,
    concurrent_identify_batches_merge_every_trait,
    erasing_a_user_removes_their_identify_log,
    retention_deletes_identify_calls_past_the_window_and_their_keys_apply_again,
    retention_deletes_delivered_and_dead_messages_but_never_pending_ones,
    retention_deletes_in_batches_oldest_first,
    retention_of_zero_days_keeps_rows_forever,
    retention_forgets_expired_sessions_states_tokens_and_old_links,
);

// ---------------------------------------------------------------- helpers

/// A fixed instant plus `secs`, with milliseconds to exercise precision.
fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + secs, 123_000_000)
        .unwrap()
}

fn sign_in(subject: &str, at: DateTime<Utc>) -> SignIn {
    SignIn {
        provider: "test".into(),
        issuer: "https://issuer.test".into(),
        subject: subject.into(),
        email: None,
        email_verified: false,
        traits: json!({ "enrichment_job_title": "Engineer" }),
        provenance: json!({ "enrichment_job_title": "claim:title" }),
        provider_created_at: None,
        at,
        link_by_email: false,
        avatar: None,
    }
}

fn no_outbox(_: &SignInOutcome) -> Vec<NewOutboxMessage> {
    Vec::new()
}

fn one_message(o: &SignInOutcome) -> Vec<NewOutboxMessage> {
    vec![message("seed", &o.user_id, Utc::now())]
}

fn message(sink: &str, user_id: &str, created_at: DateTime<Utc>) -> NewOutboxMessage {
    NewOutboxMessage {
        message_id: Uuid::new_v4(),
        sink: sink.into(),
        user_id: user_id.into(),
        payload: json!({ "user_id": user_id, "traits": { "email": "a@example.com" } }),
        created_at,
    }
}

async fn enqueue_n(store: &Store, sink: &str, n: usize, created_at: DateTime<Utc>) -> Vec<Uuid> {
    let msgs: Vec<_> = (0..n)
        .map(|i| message(sink, &format!("user-{i}"), created_at))
        .collect();
    store.enqueue(&msgs).await.unwrap();
    msgs.iter().map(|m| m.message_id).collect()
}

const LEASE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- profiles

async fn first_sign_in_creates_profile_and_identity(store: Store) {
    let outcome = store
        .record_sign_in(&sign_in("alice", t(0)), &no_outbox)
        .await
        .unwrap();
    assert!(outcome.first_sign_in);
    assert!(!outcome.linked_by_email);
    assert_eq!(outcome.created_at, t(0));
    let id = Uuid::parse_str(&outcome.user_id).expect("user_id is a uuid");
    assert_eq!(id.get_version_num(), 4);

    let user = store
        .get_user(&outcome.user_id)
        .await
        .unwrap()
        .expect("profile exists");
    assert_eq!(user.created_at, t(0));
    assert_eq!(user.created_at_source, "first_seen");
    assert_eq!(user.updated_at, t(0));
    assert_eq!(user.last_sign_in_at, Some(t(0)));
    assert_eq!(user.traits, json!({ "enrichment_job_title": "Engineer" }));
    assert_eq!(
        user.provenance,
        json!({ "enrichment_job_title": "claim:title" })
    );
    assert_eq!(user.identities.len(), 1);
    let identity = &user.identities[0];
    assert_eq!(
        (identity.issuer.as_str(), identity.subject.as_str()),
        ("https://issuer.test", "alice")
    );
    assert_eq!(identity.provider, "test");
    assert_eq!(
        (identity.first_seen_at, identity.last_seen_at),
        (t(0), t(0))
    );
    assert_eq!(
        store
            .find_user_id("https://issuer.test", "alice")
            .await
            .unwrap(),
        Some(outcome.user_id)
    );
    assert_eq!(store.profile_count().await.unwrap(), 1);
    store.ping().await.unwrap();
}

async fn second_sign_in_keeps_user_id_and_created_at_and_updates_traits(store: Store) {
    let first = store
        .record_sign_in(&sign_in("alice", t(0)), &no_outbox)
        .await
        .unwrap();
    let mut again = sign_in("alice", t(3600));
    again.traits = json!({ "enrichment_job_title": "CTO", "enrichment_country": "NL" });
    again.email = Some("alice@example.com".into());
    let second = store.record_sign_in(&again, &no_outbox).await.unwrap();

    assert_eq!(second.user_id, first.user_id);
    assert!(!second.first_sign_in);
    assert_eq!(second.created_at, t(0));
    let user = store.get_user(&first.user_id).await.unwrap().unwrap();
    assert_eq!(user.created_at, t(0));
    assert_eq!(user.traits, again.traits);
    assert_eq!(user.last_sign_in_at, Some(t(3600)));
    assert_eq!(user.updated_at, t(3600));
    assert_eq!(user.identities.len(), 1);
    assert_eq!(user.identities[0].first_seen_at, t(0));
    assert_eq!(user.identities[0].last_seen_at, t(3600));
    assert_eq!(
        user.identities[0].email.as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(store.profile_count().await.unwrap(), 1);
}

async fn provider_created_at_moves_created_at_earlier_never_later(store: Store) {
    let first = store
        .record_sign_in(&sign_in("alice", t(0)), &no_outbox)
        .await
        .unwrap();
    assert_eq!(first.created_at, t(0));

    let mut s = sign_in("alice", t(10));
    s.provider_created_at = Some(t(-1000));
    let o = store.record_sign_in(&s, &no_outbox).await.unwrap();
    assert_eq!(o.created_at, t(-1000));
    let user = store.get_user(&o.user_id).await.unwrap().unwrap();
    assert_eq!(
        (user.created_at, user.created_at_source.as_str()),
        (t(-1000), "provider")
    );

    s.at = t(20);
    s.provider_created_at = Some(t(5)); // later: ignored
    assert_eq!(
        store
            .record_sign_in(&s, &no_outbox)
            .await
            .unwrap()
            .created_at,
        t(-1000)
    );
    s.at = t(30);
    s.provider_created_at = None;
    assert_eq!(
        store
            .record_sign_in(&s, &no_outbox)
            .await
            .unwrap()
            .created_at,
        t(-1000)
    );
    s.at = t(40);
    s.provider_created_at = Some(t(-2000)); // earlier still: moves
    assert_eq!(
        store
            .record_sign_in(&s, &no_outbox)
            .await
            .unwrap()
            .created_at,
        t(-2000)
    );

    // First sign-in with a provider value: the earlier of the two, with its source.
    let mut bob = sign_in("bob", t(0));
    bob.provider_created_at = Some(t(-86_400));
    let o = store.record_sign_in(&bob, &no_outbox).await.unwrap();
    assert!(o.first_sign_in);
    let user = store.get_user(&o.user_id).await.unwrap().unwrap();
    assert_eq!(
        (user.created_at, user.created_at_source.as_str()),
        (t(-86_400), "provider")
    );

    let mut carol = sign_in("carol", t(0));
    carol.provider_created_at = Some(t(60)); // in the future (clock skew): first sign-in wins
    let o = store.record_sign_in(&carol, &no_outbox).await.unwrap();
    let user = store.get_user(&o.user_id).await.unwrap().unwrap();
    assert_eq!(
        (user.created_at, user.created_at_source.as_str()),
        (t(0), "first_seen")
    );
}

async fn fifty_concurrent_first_sign_ins_create_one_profile(store: Store) {
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .record_sign_in(&sign_in("racer", t(i)), &one_message)
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().expect("sign-in succeeds"));
    }
    let user_ids: HashSet<_> = outcomes.iter().map(|o| o.user_id.clone()).collect();
    assert_eq!(user_ids.len(), 1, "all sign-ins found the same user");
    assert_eq!(outcomes.iter().filter(|o| o.first_sign_in).count(), 1);
    assert_eq!(store.profile_count().await.unwrap(), 1);
    let user_id = outcomes[0].user_id.clone();
    let user = store.get_user(&user_id).await.unwrap().unwrap();
    assert_eq!(user.identities.len(), 1);
    // One identify message per sign-in, none from rolled-back attempts.
    assert_eq!(store.messages_for_user(&user_id).await.unwrap().len(), 50);
}

fn with_email(subject: &str, issuer: &str, email: &str, verified: bool, link: bool) -> SignIn {
    let mut s = sign_in(subject, t(0));
    s.issuer = issuer.into();
    s.email = Some(email.into());
    s.email_verified = verified;
    s.link_by_email = link;
    s
}

async fn link_by_email_off_keeps_profiles_apart(store: Store) {
    let a = store
        .record_sign_in(
            &with_email("a", "https://google.test", "ann@example.com", true, false),
            &no_outbox,
        )
        .await
        .unwrap();
    let b = store
        .record_sign_in(
            &with_email("b", "https://okta.test", "ann@example.com", true, false),
            &no_outbox,
        )
        .await
        .unwrap();
    assert_ne!(a.user_id, b.user_id);
    assert!(a.first_sign_in && b.first_sign_in);
    assert!(!b.linked_by_email);
    assert_eq!(store.profile_count().await.unwrap(), 2);
}

async fn link_by_email_on_links_only_verified_emails(store: Store) {
    let google = "https://google.test";
    let okta = "https://okta.test";
    let a = store
        .record_sign_in(
            &with_email("a", google, "Ann@Example.com", true, true),
            &no_outbox,
        )
        .await
        .unwrap();
    // Verified on both sides, case differs: linked.
    let b = store
        .record_sign_in(
            &with_email("b", okta, "ann@example.COM", true, true),
            &no_outbox,
        )
        .await
        .unwrap();
    assert_eq!(b.user_id, a.user_id);
    assert!(b.linked_by_email && !b.first_sign_in);
    assert_eq!(b.created_at, a.created_at);
    assert_eq!(
        store
            .get_user(&a.user_id)
            .await
            .unwrap()
            .unwrap()
            .identities
            .len(),
        2
    );
    // Unverified newcomer: never linked.
    let c = store
        .record_sign_in(
            &with_email("c", "https://ms.test", "ann@example.com", false, true),
            &no_outbox,
        )
        .await
        .unwrap();
    assert_ne!(c.user_id, a.user_id);
    assert!(c.first_sign_in && !c.linked_by_email);
    // Verified newcomer, but the existing identity's email was not verified: not linked.
    let d = store
        .record_sign_in(
            &with_email("d", google, "bob@example.com", false, false),
            &no_outbox,
        )
        .await
        .unwrap();
    let e = store
        .record_sign_in(
            &with_email("e", okta, "bob@example.com", true, true),
            &no_outbox,
        )
        .await
        .unwrap();
    assert_ne!(e.user_id, d.user_id);
    assert!(e.first_sign_in);
    // A returning identity is never re-linked.
    let b_again = store
        .record_sign_in(
            &with_email("b", okta, "ann@example.com", true, true),
            &no_outbox,
        )
        .await
        .unwrap();
    assert_eq!(b_again.user_id, a.user_id);
    assert!(!b_again.linked_by_email && !b_again.first_sign_in);
}

async fn delete_user_removes_profile_identities_sessions_and_messages(store: Store) {
    let sessions = store.session_store();
    let new_session = || Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    let alice = store
        .record_sign_in(&sign_in("alice", t(0)), &one_message)
        .await
        .unwrap();
    let bob = store
        .record_sign_in(&sign_in("bob", t(0)), &one_message)
        .await
        .unwrap();
    let mut alice_1 = new_session();
    let mut alice_2 = new_session();
    let mut bob_1 = new_session();
    for (record, user) in [
        (&mut alice_1, &alice),
        (&mut alice_2, &alice),
        (&mut bob_1, &bob),
    ] {
        sessions.create(record).await.unwrap();
        store
            .link_session(&user.user_id, &record.id.to_string())
            .await
            .unwrap();
    }
    assert!(sessions.load(&alice_1.id).await.unwrap().is_some());

    assert!(store.delete_user(&alice.user_id).await.unwrap());

    assert!(store.get_user(&alice.user_id).await.unwrap().is_none());
    assert_eq!(
        store
            .find_user_id("https://issuer.test", "alice")
            .await
            .unwrap(),
        None
    );
    assert!(sessions.load(&alice_1.id).await.unwrap().is_none());
    assert!(sessions.load(&alice_2.id).await.unwrap().is_none());
    assert!(store
        .messages_for_user(&alice.user_id)
        .await
        .unwrap()
        .is_empty());
    // Bob is untouched.
    assert!(sessions.load(&bob_1.id).await.unwrap().is_some());
    assert!(store.get_user(&bob.user_id).await.unwrap().is_some());
    assert_eq!(
        store.messages_for_user(&bob.user_id).await.unwrap().len(),
        1
    );
    assert_eq!(store.profile_count().await.unwrap(), 1);
    // Unknown user: false; linking a session to one: conflict.
    assert!(!store.delete_user(&alice.user_id).await.unwrap());
    let err = store
        .link_session(&alice.user_id, "some-session")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // Alice signing in again is a new person.
    let again = store
        .record_sign_in(&sign_in("alice", t(100)), &no_outbox)
        .await
        .unwrap();
    assert!(again.first_sign_in);
    assert_ne!(again.user_id, alice.user_id);
}

// ---------------------------------------------------------------- outbox

async fn outbox_messages_are_written_in_the_sign_in_transaction(store: Store) {
    let build = |o: &SignInOutcome| {
        ["seed", "segment"]
            .iter()
            .map(|sink| NewOutboxMessage {
                message_id: Uuid::new_v4(),
                sink: sink.to_string(),
                user_id: o.user_id.clone(),
                payload: json!({
                    "user_id": o.user_id,
                    "timestamp": o.created_at.to_rfc3339(),
                    "context": { "first_sign_in": o.first_sign_in },
                }),
                created_at: t(0),
            })
            .collect::<Vec<_>>()
    };
    let o = store
        .record_sign_in(&sign_in("alice", t(0)), &build)
        .await
        .unwrap();
    let msgs = store.messages_for_user(&o.user_id).await.unwrap();
    assert_eq!(msgs.len(), 2);
    let sinks: HashSet<_> = msgs.iter().map(|m| m.sink.as_str()).collect();
    assert_eq!(sinks, HashSet::from(["seed", "segment"]));
    for m in &msgs {
        assert_eq!(m.status, OutboxStatus::Pending);
        assert_eq!(m.attempts, 0);
        assert_eq!((m.created_at, m.next_attempt_at), (t(0), t(0)));
        assert_eq!(m.payload["user_id"], json!(o.user_id));
        assert_eq!(m.payload["context"]["first_sign_in"], json!(true));
    }
}

async fn failed_outbox_insert_rolls_back_the_whole_sign_in(store: Store) {
    let duplicate = |o: &SignInOutcome| {
        let m = message("seed", &o.user_id, t(0));
        vec![m.clone(), m]
    };
    let err = store
        .record_sign_in(&sign_in("alice", t(0)), &duplicate)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store
            .find_user_id("https://issuer.test", "alice")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.profile_count().await.unwrap(), 0);
    assert!(store.outbox_stats(t(0)).await.unwrap().is_empty());

    // An existing user's update is rolled back too.
    let first = store
        .record_sign_in(&sign_in("alice", t(0)), &no_outbox)
        .await
        .unwrap();
    assert!(first.first_sign_in);
    let mut later = sign_in("alice", t(500));
    later.traits = json!({ "enrichment_job_title": "changed" });
    store.record_sign_in(&later, &duplicate).await.unwrap_err();
    let user = store.get_user(&first.user_id).await.unwrap().unwrap();
    assert_eq!(user.last_sign_in_at, Some(t(0)));
    assert_eq!(user.traits, json!({ "enrichment_job_title": "Engineer" }));
    assert!(store
        .messages_for_user(&first.user_id)
        .await
        .unwrap()
        .is_empty());
}

async fn two_owners_never_claim_the_same_message(store: Store) {
    let ids = enqueue_n(&store, "seed", 200, t(0)).await;
    let workers: Vec<_> = ["owner-a", "owner-b", "owner-c"]
        .into_iter()
        .map(|owner| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let batch = store.claim_due(owner, 7, LEASE, t(1)).await.unwrap();
                    if batch.is_empty() {
                        return seen;
                    }
                    for m in batch {
                        assert_eq!(m.attempts, 1);
                        store.mark_delivered(m.message_id, owner).await.unwrap();
                        seen.push(m.message_id);
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "a message was claimed twice");
    assert_eq!(unique, ids.into_iter().collect::<HashSet<_>>());
    let stats = store.outbox_stats(t(1)).await.unwrap();
    assert_eq!((stats[0].pending, stats[0].delivered), (0, 200));
}

async fn expired_leases_come_back(store: Store) {
    let ids = enqueue_n(&store, "seed", 1, t(0)).await;
    // Not due yet.
    assert!(store
        .claim_due("a", 10, LEASE, t(-1))
        .await
        .unwrap()
        .is_empty());
    let claimed = store.claim_due("a", 10, LEASE, t(10)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].message_id, claimed[0].attempts), (ids[0], 1));
    // Leased until t(40).
    assert!(store
        .claim_due("b", 10, LEASE, t(20))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_due("b", 10, LEASE, t(39))
        .await
        .unwrap()
        .is_empty());
    let again = store.claim_due("b", 10, LEASE, t(40)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    // The first owner lost its lease.
    let err = store.mark_delivered(ids[0], "a").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    store.mark_delivered(ids[0], "b").await.unwrap();
    assert_eq!(
        store.get_message(ids[0]).await.unwrap().unwrap().status,
        OutboxStatus::Delivered
    );
    assert!(store
        .claim_due("c", 10, LEASE, t(1000))
        .await
        .unwrap()
        .is_empty());
}

async fn mark_transitions_and_dead_letters(store: Store) {
    let ids = enqueue_n(&store, "seed", 3, t(0)).await;
    let (retry, dead, done) = (ids[0], ids[1], ids[2]);
    assert_eq!(
        store.claim_due("w", 10, LEASE, t(1)).await.unwrap().len(),
        3
    );

    store
        .mark_retry(retry, "w", t(100), "503 Service Unavailable")
        .await
        .unwrap();
    let m = store.get_message(retry).await.unwrap().unwrap();
    assert_eq!(m.status, OutboxStatus::Pending);
    assert_eq!(m.next_attempt_at, t(100));
    assert_eq!(m.last_error.as_deref(), Some("503 Service Unavailable"));

    store
        .mark_dead(dead, "w", "400 Bad Request: invalid traits")
        .await
        .unwrap();
    store.mark_delivered(done, "w").await.unwrap();
    // Nothing is due before the retry time (the others are finished).
    assert!(store
        .claim_due("w", 10, LEASE, t(99))
        .await
        .unwrap()
        .is_empty());
    // Wrong owner and finished messages are refused.
    assert!(matches!(
        store.mark_delivered(dead, "w").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.mark_retry(done, "w", t(5), "x").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.mark_dead(retry, "other", "x").await,
        Err(StoreError::Conflict(_))
    ));

    let listed = store.list_dead(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].message_id, dead);
    assert_eq!(listed[0].status, OutboxStatus::Dead);
    assert_eq!(
        listed[0].last_error.as_deref(),
        Some("400 Bad Request: invalid traits")
    );
    assert_eq!(
        store.get_message(done).await.unwrap().unwrap().status,
        OutboxStatus::Delivered
    );

    // The retried message comes back when due, counting a second attempt.
    let due = store.claim_due("w", 10, LEASE, t(100)).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|m| (m.message_id, m.attempts))
            .collect::<Vec<_>>(),
        vec![(retry, 2)]
    );
    store.mark_delivered(retry, "w").await.unwrap();

    assert_eq!(store.retry_dead(Some(Uuid::new_v4())).await.unwrap(), 0);
    assert_eq!(store.retry_dead(Some(dead)).await.unwrap(), 1);
    assert_eq!(store.retry_dead(None).await.unwrap(), 0);
    let m = store.get_message(dead).await.unwrap().unwrap();
    assert_eq!((m.status, m.attempts), (OutboxStatus::Pending, 0));
    assert!(store.list_dead(10).await.unwrap().is_empty());
    let now = Utc::now() + TimeDelta::seconds(1);
    let back = store.claim_due("w2", 10, LEASE, now).await.unwrap();
    assert_eq!(
        back.iter().map(|m| m.message_id).collect::<Vec<_>>(),
        vec![dead]
    );
}

async fn released_claims_are_claimable_again(store: Store) {
    enqueue_n(&store, "seed", 4, t(0)).await;
    assert_eq!(store.claim_due("a", 3, LEASE, t(1)).await.unwrap().len(), 3);
    assert_eq!(
        store.claim_due("b", 10, LEASE, t(1)).await.unwrap().len(),
        1
    );
    assert_eq!(store.release_claims("a").await.unwrap(), 3);
    assert_eq!(store.release_claims("a").await.unwrap(), 0);
    let back = store.claim_due("c", 10, LEASE, t(2)).await.unwrap();
    assert_eq!(back.len(), 3);
    assert!(back.iter().all(|m| m.attempts == 2));
}

async fn outbox_stats_count_per_sink(store: Store) {
    let seed_old = enqueue_n(&store, "seed", 1, t(0)).await;
    enqueue_n(&store, "seed", 1, t(5)).await;
    let seg = enqueue_n(&store, "segment", 1, t(0)).await;
    // Claim only what is due at t(0): the two t(0) messages.
    let claimed = store.claim_due("w", 10, LEASE, t(0)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    store.mark_delivered(seed_old[0], "w").await.unwrap();
    store.mark_dead(seg[0], "w", "401").await.unwrap();

    let stats = store.outbox_stats(t(65)).await.unwrap();
    assert_eq!(stats.len(), 2);
    let seed = &stats[0];
    assert_eq!(seed.sink, "seed");
    assert_eq!((seed.pending, seed.delivered, seed.dead), (1, 1, 0));
    assert_eq!(seed.oldest_pending_created_at, Some(t(5)));
    assert_eq!(seed.oldest_pending_age, Some(Duration::from_secs(60)));
    let segment = &stats[1];
    assert_eq!(segment.sink, "segment");
    assert_eq!(
        (segment.pending, segment.delivered, segment.dead),
        (0, 0, 1)
    );
    assert_eq!(segment.oldest_pending_age, None);
}

async fn reconnecting_keeps_data_and_migrations_are_idempotent(store: Store) {
    let o = store
        .record_sign_in(&sign_in("alice", t(0)), &no_outbox)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.get_user(&o.user_id).await.unwrap().is_some());
}

/// Alice signed in, with two linked database sessions: one live for `live_for`, one expired
/// an hour ago.
async fn linked_sessions(store: &Store, live_for: time::Duration) -> (SignInOutcome, Record) {
    let sessions = store.session_store();
    let user = store
        .record_sign_in(&sign_in("alice", t(0)), &no_outbox)
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let record = |expiry_date| Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date,
    };
    let (mut live, mut expired) = (
        record(now + live_for),
        record(now - time::Duration::hours(1)),
    );
    for record in [&mut live, &mut expired] {
        sessions.create(record).await.unwrap();
        store
            .link_session(&user.user_id, &record.id.to_string())
            .await
            .unwrap();
    }
    (user, live)
}

async fn expired_sessions_and_their_links_are_deleted(store: Store) {
    let sessions = store.session_store();
    let (user, live) = linked_sessions(&store, time::Duration::hours(1)).await;
    assert_eq!(store.user_sessions(&user.user_id).await.unwrap().len(), 2);
    sessions.delete_expired().await.unwrap();
    assert_eq!(
        store.user_sessions(&user.user_id).await.unwrap(),
        vec![live.id.to_string()]
    );
    assert!(sessions.load(&live.id).await.unwrap().is_some());
}

async fn a_closed_store_is_unavailable(store: Store) {
    store.close().await;
    let err = store
        .record_sign_in(&sign_in("alice", t(0)), &one_message)
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
}

// ---------------------------------------------------------------- backend-specific

#[tokio::test]
async fn unwritable_sqlite_path_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where a directory should be: fails even for root.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let path = blocker.join("data/store.db");
    let err = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(err.is_unavailable());
}

#[tokio::test]
async fn corrupt_sqlite_file_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    std::fs::write(&path, "this is not a SQLite database. ".repeat(200)).unwrap();
    let err = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn sqlite_file_and_parent_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/store.db");
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.ping().await.unwrap();
    assert!(path.exists());
    store.close().await;
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_and_hides_the_password() {
    let options = identify_bridge::store::StoreOptions {
        max_connections: Some(1),
        acquire_timeout: Duration::from_millis(300),
    };
    let url = "postgres://app:s3cret-pass@127.0.0.1:1/identify";
    let err = Store::connect_with(url, &options).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let shown = err.to_string();
    assert!(!shown.contains("s3cret-pass"), "{shown}");
    assert!(shown.contains("127.0.0.1:1"), "{shown}");
}

#[tokio::test]
async fn a_password_in_the_query_string_is_hidden_too() {
    let options = identify_bridge::store::StoreOptions {
        max_connections: Some(1),
        acquire_timeout: Duration::from_millis(300),
    };
    let url = "postgres://app@127.0.0.1:1/identify?password=s3cret-pass&sslmode=disable";
    let err = Store::connect_with(url, &options).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("s3cret-pass"), "{err}");
}

#[tokio::test]
async fn unknown_url_scheme_is_refused() {
    let err = Store::connect("mysql://u:pw@host/db").await.unwrap_err();
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    assert!(!err.to_string().contains("pw@"), "{err}");
}

fn once(spent: &SpentState) -> Callback<'_> {
    fn linked_session(o: &SignInOutcome) -> NewSession {
        NewSession {
            session_id: format!("session-{}", Uuid::new_v4()),
            record: None,
            provider: "test".into(),
            subject: o.user_id.clone(),
            sid: None,
        }
    }
    Callback {
        spent,
        session: &linked_session,
    }
}

/// A replayed callback whose code the provider would exchange again still fails: the state is
/// spent in the first sign-in's transaction, concurrently or later, and expired records go.
async fn a_spent_state_refuses_a_second_sign_in_and_writes_nothing(store: Store) {
    let spent = SpentState {
        state_hash: "hash-of-a-state".into(),
        expires_at: Utc::now() + TimeDelta::seconds(600),
    };
    let (first, second, callback) = (
        sign_in("replayed", t(0)),
        sign_in("replayed", t(1)),
        once(&spent),
    );
    let (a, b) = tokio::join!(
        store.record_sign_in_once(&first, &callback, &one_message),
        store.record_sign_in_once(&second, &callback, &one_message),
    );
    let (done, refused) = match (a, b) {
        (Ok(done), Err(refused)) | (Err(refused), Ok(done)) => (done, refused),
        other => panic!("exactly one sign-in per state: {other:?}"),
    };
    assert!(matches!(refused, StoreError::StateUsed), "{refused:?}");
    let later = store
        .record_sign_in_once(&sign_in("other", t(2)), &once(&spent), &one_message)
        .await;
    assert!(matches!(later, Err(StoreError::StateUsed)), "{later:?}");
    assert_eq!(store.profile_count().await.unwrap(), 1);
    assert_eq!(store.outbox_stats(Utc::now()).await.unwrap()[0].pending, 1);
    assert!(store.get_user(&done.user_id).await.unwrap().is_some());

    let old = SpentState {
        state_hash: "an-old-state".into(),
        expires_at: Utc::now() - TimeDelta::seconds(1),
    };
    store
        .record_sign_in_once(&sign_in("old", t(3)), &once(&old), &no_outbox)
        .await
        .unwrap();
    let forgotten = store.purge_batch(Purge::LoginStates, Utc::now(), 1000);
    assert_eq!(forgotten.await.unwrap(), 1);
    let again = store
        .record_sign_in_once(&sign_in("old", t(4)), &once(&old), &no_outbox)
        .await;
    assert!(again.is_ok(), "an expired record is forgotten: {again:?}");
}

// ---------------------------------------------------------------- retention

/// The purge plan of the default configuration with `IDENTIFY_BRIDGE__RETENTION__{key}` set.
fn plan(retention: &[(&str, &str)]) -> Plan {
    let env = retention
        .iter()
        .map(|(k, v)| (format!("IDENTIFY_BRIDGE__RETENTION__{k}"), v.to_string()));
    Plan::from_settings(
        &Settings::load_with_env(None, env, &identify_bridge::providers::KINDS)
            .expect("valid settings"),
    )
}

/// Run the plan as if it were `now`.
async fn purge_at(store: &Store, plan: &Plan, now: DateTime<Utc>) -> retention::Deleted {
    retention::purge_all(store, plan, now, &CancellationToken::new())
        .await
        .unwrap()
}

fn keys_logged(
    calls: &[(Option<String>, serde_json::Value, Option<serde_json::Value>)],
) -> Vec<&str> {
    calls
        .iter()
        .filter_map(|(key, _, _)| key.as_deref())
        .collect()
}

async fn retention_deletes_identify_calls_past_the_window_and_their_keys_apply_again(store: Store) {
    let now = Utc::now();
    let mut old = identify_call("logged", Some("old-key"), json!({"a": 1}));
    old.received_at = now - TimeDelta::days(31);
    let mut recent = identify_call("logged", Some("recent-key"), json!({"b": 2}));
    recent.received_at = now - TimeDelta::days(29);
    store
        .record_identify_calls(&[old.clone(), recent.clone()])
        .await
        .unwrap();
    let deleted = purge_at(&store, &plan(&[("IDENTIFY_CALLS_DAYS", "30")]), now).await;
    assert_eq!(deleted.of(Purge::IdentifyCalls), 1, "{deleted}");
    let calls = store.identify_calls("logged").await.unwrap();
    assert_eq!(keys_logged(&calls), ["recent-key"]);
    // The idempotency window is the retention: the purged key applies again, the kept one
    // still replays. The profile is not a log and stays.
    let outcomes = store.record_identify_calls(&[old, recent]).await.unwrap();
    assert_eq!(outcomes[0], IdentifyOutcome::Applied { created: false });
    assert!(
        matches!(outcomes[1], IdentifyOutcome::Replayed(_)),
        "{outcomes:?}"
    );
    assert!(store.get_user("logged").await.unwrap().is_some());
}

async fn retention_deletes_delivered_and_dead_messages_but_never_pending_ones(store: Store) {
    let now = Utc::now();
    let ids = enqueue_n(&store, "seed", 4, t(0)).await;
    let (delivered, dead, retrying, leased) = (ids[0], ids[1], ids[2], ids[3]);
    assert_eq!(store.claim_due("w", 10, LEASE, now).await.unwrap().len(), 4);
    store.mark_delivered(delivered, "w").await.unwrap();
    store.mark_dead(dead, "w", "400 Bad Request").await.unwrap();
    let far = now + TimeDelta::days(400);
    store.mark_retry(retrying, "w", far, "503").await.unwrap();
    // Enqueued long ago and never claimed.
    let waiting = enqueue_n(&store, "seed", 1, t(0)).await[0];
    let plan = plan(&[("DELIVERED_OUTBOX_DAYS", "7"), ("DEAD_LETTERS_DAYS", "30")]);
    let status = |id| {
        let store = store.clone();
        async move { store.get_message(id).await.unwrap().map(|m| m.status) }
    };

    let deleted = purge_at(&store, &plan, now + TimeDelta::days(6)).await;
    assert_eq!(deleted.of(Purge::DeliveredOutbox), 0, "{deleted}");
    let deleted = purge_at(&store, &plan, now + TimeDelta::days(8)).await;
    assert_eq!(deleted.of(Purge::DeliveredOutbox), 1, "{deleted}");
    assert_eq!(deleted.of(Purge::DeadLetters), 0, "{deleted}");
    assert_eq!(status(delivered).await, None);
    assert_eq!(status(dead).await, Some(OutboxStatus::Dead));
    let deleted = purge_at(&store, &plan, now + TimeDelta::days(31)).await;
    assert_eq!(deleted.of(Purge::DeadLetters), 1, "{deleted}");
    assert_eq!(status(dead).await, None);

    let deleted = purge_at(&store, &plan, now + TimeDelta::days(36_500)).await;
    assert_eq!(deleted.total(), 0, "{deleted}");
    for id in [retrying, leased, waiting] {
        assert_eq!(status(id).await, Some(OutboxStatus::Pending), "{id}");
    }
}

async fn retention_deletes_in_batches_oldest_first(store: Store) {
    let now = Utc::now();
    let mut calls: Vec<IdentifyCall> = (0..10)
        .map(|i| {
            let mut call = identify_call("batched", Some(&format!("k{i}")), json!({ "n": i }));
            call.received_at = now - TimeDelta::days(100 - i);
            call
        })
        .collect();
    calls.push(identify_call("batched", Some("today"), json!({ "n": 10 })));
    // Logged newest first, so the log's insertion order is not its time order.
    calls.reverse();
    store.record_identify_calls(&calls).await.unwrap();
    let before = now - TimeDelta::days(30);

    assert_eq!(
        store
            .purge_batch(Purge::IdentifyCalls, before, 3)
            .await
            .unwrap(),
        3
    );
    let calls = store.identify_calls("batched").await.unwrap();
    assert_eq!(
        keys_logged(&calls),
        ["k3", "k4", "k5", "k6", "k7", "k8", "k9", "today"]
    );
    let stop = CancellationToken::new();
    let rest = retention::purge(&store, Purge::IdentifyCalls, before, 3, &stop);
    assert_eq!(rest.await.unwrap(), 7, "three statements: 3 + 3 + 1");
    let calls = store.identify_calls("batched").await.unwrap();
    assert_eq!(keys_logged(&calls), ["today"]);
}

async fn retention_of_zero_days_keeps_rows_forever(store: Store) {
    let now = Utc::now();
    let mut old = identify_call("forever", None, json!({"a": 1}));
    old.received_at = now - TimeDelta::days(3650);
    store.record_identify_calls(&[old]).await.unwrap();
    let ids = enqueue_n(&store, "seed", 2, t(0)).await;
    store.claim_due("w", 10, LEASE, now).await.unwrap();
    store.mark_delivered(ids[0], "w").await.unwrap();
    store.mark_dead(ids[1], "w", "400").await.unwrap();
    let forever = plan(&[
        ("IDENTIFY_CALLS_DAYS", "0"),
        ("DELIVERED_OUTBOX_DAYS", "0"),
        ("DEAD_LETTERS_DAYS", "0"),
    ]);
    let much_later = now + TimeDelta::days(365_000);
    let deleted = purge_at(&store, &forever, much_later).await;
    for kind in [
        Purge::IdentifyCalls,
        Purge::DeliveredOutbox,
        Purge::DeadLetters,
    ] {
        assert_eq!(deleted.of(kind), 0, "{deleted}");
    }
    assert_eq!(store.identify_calls("forever").await.unwrap().len(), 1);
    assert!(store.get_message(ids[0]).await.unwrap().is_some());
    assert!(store.get_message(ids[1]).await.unwrap().is_some());
    // The defaults do purge them.
    let deleted = purge_at(&store, &plan(&[]), much_later).await;
    for kind in [
        Purge::IdentifyCalls,
        Purge::DeliveredOutbox,
        Purge::DeadLetters,
    ] {
        assert_eq!(deleted.of(kind), 1, "{kind:?}: {deleted}");
    }
}

async fn retention_forgets_expired_sessions_states_tokens_and_old_links(store: Store) {
    let sessions = store.session_store();
    let (user, live) = linked_sessions(&store, time::Duration::days(30)).await;
    let (past, future) = (
        Utc::now() - TimeDelta::seconds(1),
        Utc::now() + TimeDelta::hours(1),
    );
    assert!(store.spend_logout_token("spent", past).await.unwrap());
    assert!(store.spend_logout_token("fresh", future).await.unwrap());
    let plan = plan(&[]);

    let deleted = purge_at(&store, &plan, Utc::now()).await;
    assert_eq!(deleted.of(Purge::ExpiredSessions), 1, "{deleted}");
    assert_eq!(deleted.of(Purge::SessionLinks), 1, "{deleted}");
    assert_eq!(deleted.of(Purge::LogoutTokens), 1, "{deleted}");
    assert_eq!(
        store.user_sessions(&user.user_id).await.unwrap(),
        vec![live.id.to_string()]
    );
    assert!(sessions.load(&live.id).await.unwrap().is_some());
    assert!(
        store.spend_logout_token("spent", past).await.unwrap(),
        "forgotten"
    );
    assert!(
        !store.spend_logout_token("fresh", future).await.unwrap(),
        "kept"
    );

    // A link outlives no session: past `session.max_lifetime_secs` (7 days) it goes, whichever
    // store holds the session.
    let later = Utc::now() + TimeDelta::days(7) + TimeDelta::hours(2);
    let deleted = purge_at(&store, &plan, later).await;
    assert_eq!(deleted.of(Purge::ExpiredSessions), 0, "{deleted}");
    assert_eq!(deleted.of(Purge::SessionLinks), 1, "{deleted}");
    assert!(store.user_sessions(&user.user_id).await.unwrap().is_empty());
}
