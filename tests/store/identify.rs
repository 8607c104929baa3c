//! The identify conformance suite: each story runs, through `store_tests!`, on every executor
//! of the one identify algorithm that ships: the identify writer's rusqlite connection on a
//! SQLite file, and PostgreSQL. (In-memory SQLite is refused at connect: see the last test.)

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use identify_bridge::store::{request_digest, IdentifyCall, IdentifyOutcome, Store, StoreError};
use serde_json::{json, Value};

use super::{no_outbox, sign_in, t};

/// A call from caller `key:abc`, received now, with a context.
pub fn identify_call(user_id: &str, key: Option<&str>, traits: Value) -> IdentifyCall {
    let context_json = Some(json!({"ip": "203.0.113.1"}).to_string());
    IdentifyCall {
        caller: "key:abc".into(),
        idempotency_key: key.map(str::to_string),
        user_id: user_id.into(),
        traits: traits.as_object().unwrap().clone(),
        traits_json: traits.to_string(),
        request_digest: request_digest(user_id, &traits.to_string(), context_json.as_deref(), None),
        context_json,
        account_created_at: None,
        response: json!({"status": "success", "data": {"user_id": user_id, "traits": traits}})
            .to_string(),
        received_at: Utc::now(),
    }
}

/// `call` with an account creation time (and the digest that goes with it).
fn created_at(mut call: IdentifyCall, at: DateTime<Utc>) -> IdentifyCall {
    call.account_created_at = Some(at);
    call.request_digest = request_digest(
        &call.user_id,
        &call.traits_json,
        call.context_json.as_deref(),
        Some(at),
    );
    call
}

const APPLIED: IdentifyOutcome = IdentifyOutcome::Applied { created: false };
const CREATED: IdentifyOutcome = IdentifyOutcome::Applied { created: true };

async fn traits_of(store: &Store, user_id: &str) -> Value {
    store.get_user(user_id).await.unwrap().unwrap().traits
}

pub async fn an_identify_call_creates_a_profile_and_logs_the_call(store: Store) {
    let call = identify_call("new-user", Some("k-1"), json!({"plan": "pro", "seats": 3}));
    let outcomes = store
        .record_identify_calls(std::slice::from_ref(&call))
        .await
        .unwrap();
    assert_eq!(outcomes, [CREATED]);
    let user = store.get_user("new-user").await.unwrap().unwrap();
    assert_eq!(user.traits, json!({"plan": "pro", "seats": 3}));
    assert_eq!(
        user.provenance["plan"],
        json!({"source": "api:identify", "verified": false})
    );
    let received = call.received_at.timestamp_millis();
    assert_eq!(
        user.created_at.timestamp_millis(),
        received,
        "no account time: receipt"
    );
    assert_eq!(user.updated_at.timestamp_millis(), received);
    assert_eq!(user.created_at_source, "api");
    assert!(user.identities.is_empty());
    let log = store.identify_calls("new-user").await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].0.as_deref(), Some("k-1"));
    assert_eq!(log[0].1, json!({"plan": "pro", "seats": 3}));
    assert_eq!(log[0].2.as_ref().unwrap()["ip"], "203.0.113.1");
}

pub async fn identify_calls_merge_traits_and_null_removes_one(store: Store) {
    let first = identify_call(
        "merged",
        None,
        json!({"a": "1", "b": ["x", "y"], "c": {"d": 1}}),
    );
    store.record_identify_calls(&[first]).await.unwrap();
    let outcomes = store
        .record_identify_calls(&[identify_call(
            "merged",
            None,
            json!({"b": null, "c": {"e": 2}, "f": false, "missing": null}),
        )])
        .await
        .unwrap();
    assert_eq!(outcomes, [APPLIED]);
    let user = store.get_user("merged").await.unwrap().unwrap();
    assert_eq!(user.traits, json!({"a": "1", "c": {"e": 2}, "f": false}));
    let sources: Vec<&String> = user.provenance.as_object().unwrap().keys().collect();
    assert_eq!(
        sources,
        ["a", "c", "f"],
        "a removed trait loses its provenance"
    );
    assert_eq!(store.identify_calls("merged").await.unwrap().len(), 2);
}

pub async fn a_repeated_idempotency_key_replays_the_first_answer_and_writes_nothing(store: Store) {
    let first = identify_call("replayed", Some("m-1"), json!({"a": "1"}));
    store
        .record_identify_calls(std::slice::from_ref(&first))
        .await
        .unwrap();
    let before = store.get_user("replayed").await.unwrap().unwrap();
    let mut retry = first.clone();
    retry.received_at = Utc::now() + TimeDelta::seconds(5);
    retry.response = "{\"another\":\"answer\"}".into();
    let outcomes = store.record_identify_calls(&[retry]).await.unwrap();
    assert_eq!(
        outcomes,
        [IdentifyOutcome::Replayed(first.response.clone())]
    );
    assert_eq!(store.get_user("replayed").await.unwrap().unwrap(), before);
    assert_eq!(store.identify_calls("replayed").await.unwrap().len(), 1);
}

pub async fn an_idempotency_key_reused_for_another_request_is_refused_and_writes_nothing(
    store: Store,
) {
    let first = identify_call("reused", Some("m-1"), json!({"a": "1"}));
    store.record_identify_calls(&[first]).await.unwrap();
    let before = store.get_user("reused").await.unwrap().unwrap();
    let other_body = identify_call("reused", Some("m-1"), json!({"a": "2"}));
    let other_user = identify_call("someone-else", Some("m-1"), json!({"a": "1"}));
    let outcomes = store
        .record_identify_calls(&[other_body, other_user])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [IdentifyOutcome::KeyReused, IdentifyOutcome::KeyReused]
    );
    assert_eq!(store.get_user("reused").await.unwrap().unwrap(), before);
    assert!(store.get_user("someone-else").await.unwrap().is_none());
    assert_eq!(store.identify_calls("reused").await.unwrap().len(), 1);

    // The key is scoped to its caller: another caller may use it.
    let mut another_caller = identify_call("reused", Some("m-1"), json!({"d": true}));
    another_caller.caller = "sub:svc".into();
    let outcomes = store
        .record_identify_calls(&[another_caller])
        .await
        .unwrap();
    assert_eq!(outcomes, [APPLIED]);
    assert_eq!(
        traits_of(&store, "reused").await,
        json!({"a": "1", "d": true})
    );
}

pub async fn a_batch_with_one_user_many_times_applies_its_calls_in_order(store: Store) {
    store
        .record_identify_calls(&[identify_call("z-old", None, json!({"n": 0}))])
        .await
        .unwrap();
    // Users out of key order, each several times, a new one and a stored one.
    let outcomes = store
        .record_identify_calls(&[
            identify_call("z-old", None, json!({"n": 1, "gone": "soon"})),
            identify_call("a-new", None, json!({"n": 1})),
            identify_call("z-old", None, json!({"gone": null, "n": 2})),
            identify_call("a-new", None, json!({"n": 2, "kept": true})),
            identify_call("a-new", None, json!({"n": 3})),
        ])
        .await
        .unwrap();
    assert_eq!(outcomes, [APPLIED, CREATED, APPLIED, APPLIED, APPLIED]);
    assert_eq!(traits_of(&store, "z-old").await, json!({"n": 2}));
    assert_eq!(
        traits_of(&store, "a-new").await,
        json!({"n": 3, "kept": true})
    );
    assert_eq!(store.identify_calls("a-new").await.unwrap().len(), 3);
    assert_eq!(store.identify_calls("z-old").await.unwrap().len(), 3);
}

pub async fn a_key_repeated_inside_a_batch_replays_or_is_refused_there(store: Store) {
    let first = identify_call("in-batch", Some("m-1"), json!({"a": "1"}));
    let mut same = first.clone();
    same.response = "{\"not\":\"this\"}".into();
    let outcomes = store
        .record_identify_calls(&[
            first.clone(),
            identify_call("in-batch", None, json!({"b": 2})),
            same,
            identify_call("in-batch", Some("m-1"), json!({"a": "changed"})),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            CREATED,
            APPLIED,
            IdentifyOutcome::Replayed(first.response.clone()),
            IdentifyOutcome::KeyReused,
        ]
    );
    assert_eq!(
        traits_of(&store, "in-batch").await,
        json!({"a": "1", "b": 2})
    );
    assert_eq!(store.identify_calls("in-batch").await.unwrap().len(), 2);
}

pub async fn account_created_at_starts_a_profile_and_moves_it_only_earlier(store: Store) {
    let created =
        Utc.with_ymd_and_hms(2020, 11, 23, 22, 28, 55).unwrap() + TimeDelta::microseconds(111_999);
    let millis = created.timestamp_millis();
    let new = created_at(identify_call("dated", None, json!({})), created);
    store.record_identify_calls(&[new]).await.unwrap();
    let user = store.get_user("dated").await.unwrap().unwrap();
    assert_eq!(
        user.created_at.timestamp_millis(),
        millis,
        "kept to the millisecond"
    );
    assert_eq!(user.created_at_source, "api");

    let later = created_at(
        identify_call("dated", None, json!({})),
        created + TimeDelta::days(1),
    );
    store.record_identify_calls(&[later]).await.unwrap();
    let user = store.get_user("dated").await.unwrap().unwrap();
    assert_eq!(user.created_at.timestamp_millis(), millis, "never later");

    // A signed-in profile's provider time moves earlier too, and then says `api`.
    let mut signed_in = sign_in("dated-sign-in", t(0));
    signed_in.provider_created_at = Some(t(-100));
    let user_id = store
        .record_sign_in(&signed_in, &no_outbox)
        .await
        .unwrap()
        .user_id;
    let before = store.get_user(&user_id).await.unwrap().unwrap();
    assert_eq!(before.created_at_source, "provider");
    let not_earlier = created_at(identify_call(&user_id, None, json!({})), t(-50));
    store.record_identify_calls(&[not_earlier]).await.unwrap();
    let user = store.get_user(&user_id).await.unwrap().unwrap();
    assert_eq!(
        (user.created_at, user.created_at_source.as_str()),
        (t(-100), "provider")
    );
    let earlier = created_at(identify_call(&user_id, None, json!({})), t(-200));
    store.record_identify_calls(&[earlier]).await.unwrap();
    let user = store.get_user(&user_id).await.unwrap().unwrap();
    assert_eq!(
        (user.created_at, user.created_at_source.as_str()),
        (t(-200), "api")
    );
}

pub async fn an_identify_call_repeating_a_value_keeps_its_provenance(store: Store) {
    let mut signed_in = sign_in("prov", t(0));
    signed_in.traits = json!({"enrichment_job_title": "Engineer", "enrichment_city": "Oslo"});
    signed_in.provenance = json!({
        "enrichment_job_title": {"source": "claims:/title", "verified": true},
        "enrichment_city": {"source": "claims:/address/locality", "verified": true},
    });
    let user_id = store
        .record_sign_in(&signed_in, &no_outbox)
        .await
        .unwrap()
        .user_id;
    // The same title (as the bridge's own identify call repeats it), a new city, a new trait,
    // in one batch with a second call repeating the new city.
    store
        .record_identify_calls(&[
            identify_call(
                &user_id,
                None,
                json!({"enrichment_job_title": "Engineer", "enrichment_city": "Bergen", "plan": "pro"}),
            ),
            identify_call(&user_id, None, json!({"enrichment_city": "Bergen"})),
        ])
        .await
        .unwrap();
    let user = store.get_user(&user_id).await.unwrap().unwrap();
    assert_eq!(user.traits["enrichment_job_title"], "Engineer");
    assert_eq!(
        user.provenance["enrichment_job_title"],
        json!({"source": "claims:/title", "verified": true}),
        "an unchanged value keeps where it came from"
    );
    assert_eq!(user.traits["enrichment_city"], "Bergen");
    assert_eq!(user.provenance["enrichment_city"]["source"], "api:identify");
    assert_eq!(user.provenance["plan"]["source"], "api:identify");
}

pub async fn concurrent_identify_batches_merge_every_trait(store: Store) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let call = identify_call("shared", None, json!({ format!("t{i}"): i }));
                store.record_identify_calls(&[call]).await.unwrap()
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        if task.await.unwrap() == [CREATED] {
            created += 1;
        }
    }
    assert_eq!(created, 1, "one call creates the profile");
    let traits = traits_of(&store, "shared").await;
    assert_eq!(
        traits.as_object().unwrap().len(),
        16,
        "no trait lost: {traits}"
    );
}

pub async fn erasing_a_user_removes_their_identify_log(store: Store) {
    store
        .record_identify_calls(&[identify_call("erased", Some("m-1"), json!({"a": 1}))])
        .await
        .unwrap();
    assert!(store.delete_user("erased").await.unwrap());
    assert!(store.identify_calls("erased").await.unwrap().is_empty());
}

#[tokio::test]
async fn an_in_memory_sqlite_database_is_refused_with_a_reason() {
    for url in ["sqlite::memory:", "sqlite://file.db?mode=memory"] {
        let err = Store::connect(url).await.unwrap_err();
        assert!(matches!(err, StoreError::Other(_)), "{url}: {err:?}");
        let text = err.to_string();
        assert!(text.contains("in-memory SQLite"), "{text}");
        assert!(text.contains("database.url"), "{text}");
    }
}
