//! The delivery worker against a misbehaving sink: retries, Retry-After, timeouts, refused
//! connections and rejected payloads. Messages go straight into a store; a `Worker` delivers.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use chrono::Utc;
use identify_bridge::config::SinkSettings;
use identify_bridge::outbox::message::to_row;
use identify_bridge::outbox::{IdentifyMessage, Worker};
use identify_bridge::store::{NewOutboxMessage, OutboxMessage, OutboxStatus, Store};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::sink::{Reply, TestSink};

pub async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("outbox.db").display());
    (Store::connect(&url).await.unwrap(), dir)
}

/// A sink's settings with quick retries; `extra` overrides.
pub fn sink_settings(url: &str, extra: Value) -> SinkSettings {
    let mut v = json!({"name": "test", "url": url, "api_key": "k",
                       "backoff_base_ms": 50, "backoff_cap_secs": 1, "timeout_secs": 2});
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(v).unwrap()
}

pub fn new_message(sink: &SinkSettings, user_id: &str) -> NewOutboxMessage {
    let message = IdentifyMessage {
        message_id: Uuid::new_v4(),
        user_id: user_id.into(),
        traits: json!({"email": format!("{user_id}@example.com")})
            .as_object()
            .unwrap()
            .clone(),
        created_at: "2024-01-02T03:04:05.678Z".into(),
        event_at: "2026-11-29T10:00:00.000Z".into(),
        anonymous_id: None,
        context: Default::default(),
    };
    to_row(sink, message, Utc::now())
}

/// Run a worker until the returned token is cancelled.
pub fn run_worker(store: &Store, sink: &SinkSettings, owner: &str) -> CancellationToken {
    let stop = CancellationToken::new();
    let worker = Worker::new(store.clone(), sink.clone(), owner);
    tokio::spawn(worker.run(stop.clone()));
    stop
}

pub async fn wait_until<F: Fn(&OutboxMessage) -> bool>(
    store: &Store,
    id: Uuid,
    what: F,
    timeout: Duration,
) -> OutboxMessage {
    let deadline = Instant::now() + timeout;
    loop {
        let m = store
            .get_message(id)
            .await
            .unwrap()
            .expect("message exists");
        if what(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "message never got there: {m:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn delivered(m: &OutboxMessage) -> bool {
    m.status == OutboxStatus::Delivered
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_500_then_200_is_delivered_once_on_the_second_attempt() {
    let (store, _dir) = sqlite_store().await;
    let sink = TestSink::start().await;
    sink.script([Reply::status(500).body("upstream down")]);
    let settings = sink_settings(&sink.url, json!({}));
    let m = new_message(&settings, "u1");
    store.enqueue(std::slice::from_ref(&m)).await.unwrap();
    let stop = run_worker(&store, &settings, "w1");
    let done = wait_until(&store, m.message_id, delivered, WAIT).await;
    assert_eq!(done.attempts, 2);
    // Delivered: nothing sends it again (the sink records a request before it answers).
    let got = sink.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].header("idempotency-key"),
        Some(&*m.message_id.to_string())
    );
    assert_eq!(
        got[0].header("idempotency-key"),
        got[1].header("idempotency-key")
    );
    assert_eq!(got[0].body, got[1].body);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_with_retry_after_waits_that_long() {
    let (store, _dir) = sqlite_store().await;
    let sink = TestSink::start().await;
    sink.script([Reply::status(429).retry_after("1")]);
    let settings = sink_settings(&sink.url, json!({}));
    let m = new_message(&settings, "u1");
    store.enqueue(std::slice::from_ref(&m)).await.unwrap();
    let stop = run_worker(&store, &settings, "w1");
    wait_until(&store, m.message_id, delivered, WAIT).await;
    let got = sink.requests();
    assert_eq!(got.len(), 2);
    let waited = got[1].at - got[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sink_that_hangs_times_out_and_is_retried() {
    let (store, _dir) = sqlite_store().await;
    let sink = TestSink::start().await;
    sink.script([Reply::status(200).delay(Duration::from_secs(5))]);
    let settings = sink_settings(&sink.url, json!({"timeout_secs": 1}));
    let m = new_message(&settings, "u1");
    store.enqueue(std::slice::from_ref(&m)).await.unwrap();
    let stop = run_worker(&store, &settings, "w1");
    let done = wait_until(&store, m.message_id, delivered, WAIT).await;
    assert_eq!(done.attempts, 2);
    assert!(done.last_error.unwrap().contains("timed out"));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_connection_stays_pending_until_the_sink_appears() {
    let (store, _dir) = sqlite_store().await;
    // A port that nothing listens on (yet).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/api/identify");
    let settings = sink_settings(&url, json!({}));
    let m = new_message(&settings, "u1");
    store.enqueue(std::slice::from_ref(&m)).await.unwrap();
    let stop = run_worker(&store, &settings, "w1");
    let failed = wait_until(&store, m.message_id, |m| m.last_error.is_some(), WAIT).await;
    assert_eq!(failed.status, OutboxStatus::Pending);
    assert!(
        failed.last_error.as_deref().unwrap().contains("connection"),
        "{failed:?}"
    );
    let sink = TestSink::start_on(
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap(),
    );
    wait_until(&store, m.message_id, delivered, WAIT).await;
    assert_eq!(sink.requests().len(), 1);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_400_goes_to_dead_letter_with_the_body_and_is_not_retried() {
    let (store, _dir) = sqlite_store().await;
    let sink = TestSink::start().await;
    let error = r#"{"status":"error","message":"Invalid user ID or missing fields","error_code":"INVALID_REQUEST"}"#;
    sink.script([Reply::status(400).body(error)]);
    let settings = sink_settings(&sink.url, json!({}));
    let m = new_message(&settings, "u1");
    store.enqueue(std::slice::from_ref(&m)).await.unwrap();
    let stop = run_worker(&store, &settings, "w1");
    let dead = wait_until(
        &store,
        m.message_id,
        |m| m.status == OutboxStatus::Dead,
        WAIT,
    )
    .await;
    assert!(
        dead.last_error.as_deref().unwrap().contains(error),
        "{dead:?}"
    );
    assert!(dead.last_error.as_deref().unwrap().starts_with("HTTP 400"));
    // Dead-lettered at once: one request, none after.
    assert_eq!(sink.requests().len(), 1);
    assert_eq!(store.list_dead(10).await.unwrap().len(), 1);
    // The operator retries it; the sink now accepts it.
    assert_eq!(store.retry_dead(Some(m.message_id)).await.unwrap(), 1);
    wait_until(&store, m.message_id, delivered, WAIT).await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_huge_error_body_is_cut_to_two_kibibytes() {
    let (store, _dir) = sqlite_store().await;
    let sink = TestSink::start().await;
    sink.script([Reply::status(422).body(vec![b'x'; 20 * 1024 * 1024])]);
    let settings = sink_settings(&sink.url, json!({}));
    let m = new_message(&settings, "u1");
    store.enqueue(std::slice::from_ref(&m)).await.unwrap();
    let stop = run_worker(&store, &settings, "w1");
    let dead = wait_until(
        &store,
        m.message_id,
        |m| m.status == OutboxStatus::Dead,
        WAIT,
    )
    .await;
    let reason = dead.last_error.unwrap();
    assert!(reason.len() <= 2048 + 64, "{} bytes kept", reason.len());
    assert!(reason.ends_with("xxxx"));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_past_its_max_age_goes_to_dead_letter() {
    let (store, _dir) = sqlite_store().await;
    let sink = TestSink::start().await;
    sink.script([Reply::status(503).retry_after("30")]);
    let settings = sink_settings(&sink.url, json!({"max_age_secs": 5}));
    let m = new_message(&settings, "u1");
    store.enqueue(std::slice::from_ref(&m)).await.unwrap();
    let stop = run_worker(&store, &settings, "w1");
    let dead = wait_until(
        &store,
        m.message_id,
        |m| m.status == OutboxStatus::Dead,
        WAIT,
    )
    .await;
    assert!(dead.last_error.unwrap().contains("max_age_secs"));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thrivestack_sink_gets_batches_of_batch_size() {
    let (store, _dir) = sqlite_store().await;
    let sink = TestSink::start().await;
    let settings = sink_settings(&sink.url, json!({"format": "thrivestack", "batch_size": 3}));
    let msgs: Vec<_> = (0..7)
        .map(|i| new_message(&settings, &format!("u{i}")))
        .collect();
    store.enqueue(&msgs).await.unwrap();
    let stop = run_worker(&store, &settings, "w1");
    for m in &msgs {
        wait_until(&store, m.message_id, delivered, WAIT).await;
    }
    let sizes: Vec<usize> = sink
        .requests()
        .iter()
        .map(|r| r.body.as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [3, 3, 1]);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_batch_is_resent_one_by_one_and_only_the_bad_message_is_dead() {
    let (store, _dir) = sqlite_store().await;
    let sink = TestSink::start().await;
    sink.refuse_user("u1");
    let settings = sink_settings(&sink.url, json!({"format": "thrivestack", "batch_size": 3}));
    let msgs: Vec<_> = (0..3)
        .map(|i| new_message(&settings, &format!("u{i}")))
        .collect();
    store.enqueue(&msgs).await.unwrap();
    let stop = run_worker(&store, &settings, "w1");
    let good = [&msgs[0], &msgs[2]];
    for m in good {
        let done = wait_until(&store, m.message_id, delivered, WAIT).await;
        assert_eq!(
            done.attempts, 1,
            "the batch and the single send are one claim"
        );
    }
    let bad = wait_until(
        &store,
        msgs[1].message_id,
        |m| m.status == OutboxStatus::Dead,
        WAIT,
    )
    .await;
    assert!(
        bad.last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 400") && e.contains("u1 is not accepted")),
        "{bad:?}"
    );
    let mut sizes: Vec<usize> = sink
        .requests()
        .iter()
        .map(|r| r.body.as_array().unwrap().len())
        .collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 1, 1, 3], "one refused batch, then three singles");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_finishes_in_flight_sends_then_releases_what_outlasts_the_grace() {
    let (store, _dir) = sqlite_store().await;
    let sink = TestSink::start().await;
    sink.script([
        Reply::status(200).delay(Duration::from_millis(500)),
        Reply::status(200).delay(Duration::from_secs(8)),
    ]);
    let settings = sink_settings(&sink.url, json!({"timeout_secs": 10, "batch_size": 1}));
    let quick = new_message(&settings, "quick");
    store.enqueue(std::slice::from_ref(&quick)).await.unwrap();

    // A send that finishes within the grace period is recorded.
    let stop = CancellationToken::new();
    let worker = tokio::spawn(Worker::new(store.clone(), settings.clone(), "w1").run(stop.clone()));
    sink.wait_for(1, WAIT).await;
    stop.cancel();
    worker.await.unwrap();
    let m = store.get_message(quick.message_id).await.unwrap().unwrap();
    assert_eq!(m.status, OutboxStatus::Delivered);

    // A send that outlasts it is abandoned and its lease given back at once.
    let slow = new_message(&settings, "slow");
    store.enqueue(std::slice::from_ref(&slow)).await.unwrap();
    let stop = CancellationToken::new();
    let worker = tokio::spawn(Worker::new(store.clone(), settings.clone(), "w2").run(stop.clone()));
    sink.wait_for(2, WAIT).await;
    let stopped = Instant::now();
    stop.cancel();
    worker.await.unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(5));
    let again = store
        .claim_due("w3", 10, Duration::from_secs(60), Utc::now())
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "the lease was released");
    assert_eq!(again[0].message_id, slow.message_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reset_connection_is_retried() {
    let (store, _dir) = sqlite_store().await;
    let raw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = raw.local_addr().unwrap().port();
    let settings = sink_settings(&format!("http://127.0.0.1:{port}/api/identify"), json!({}));
    let m = new_message(&settings, "u1");
    store.enqueue(std::slice::from_ref(&m)).await.unwrap();
    let stop = run_worker(&store, &settings, "w1");
    // Take the request's first bytes, then drop the connection without an answer.
    let (mut conn, _) = raw.accept().await.unwrap();
    let mut buf = [0u8; 64];
    let _ = tokio::io::AsyncReadExt::read(&mut conn, &mut buf).await;
    drop(conn);
    drop(raw);
    let failed = wait_until(&store, m.message_id, |m| m.last_error.is_some(), WAIT).await;
    assert_eq!(failed.status, OutboxStatus::Pending);
    let sink = TestSink::start_on(
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap(),
    );
    wait_until(&store, m.message_id, delivered, WAIT).await;
    assert_eq!(sink.requests().len(), 1);
    stop.cancel();
}
