//! Outbox delivery benchmark (not a timed test): `scripts/bench-outbox` or
//! `cargo bench --bench outbox [-- MESSAGES]`.
//!
//! (a) sign-in to delivery: `record_sign_in` with one sink, then the time until a local sink
//!     has received the identify call (median and p95 of 50 sign-ins);
//! (b) backlog drain: MESSAGES (default 100,000) queued on SQLite, delivered to a local sink;
//!     baseline: raw POSTs of the same body to the same sink with the same client settings
//!     and concurrency, and the ratio of the two rates.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use identify_bridge::config::SinkSettings;
use identify_bridge::outbox::message::to_row;
use identify_bridge::outbox::{worker, IdentifyMessage, Worker};
use identify_bridge::store::{SignIn, SignInOutcome, Store};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Sink {
    url: String,
    count: Arc<AtomicUsize>,
    arrived: Arc<Notify>,
}

async fn start_sink() -> Sink {
    let count = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(Notify::new());
    let (c, a) = (count.clone(), arrived.clone());
    let app = axum::Router::new().fallback(move |_body: axum::body::Bytes| {
        let (c, a) = (c.clone(), a.clone());
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            a.notify_waiters();
            r#"{"status":"success"}"#
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/identify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Sink {
        url,
        count,
        arrived,
    }
}

fn message(user_id: &str, created_at: &str) -> IdentifyMessage {
    IdentifyMessage {
        message_id: Uuid::new_v4(),
        user_id: user_id.into(),
        traits: json!({"email": format!("{user_id}@example.com"), "name": "Bench User",
                       "enrichment_country": "GB"})
        .as_object()
        .unwrap()
        .clone(),
        created_at: created_at.into(),
        event_at: created_at.into(),
        anonymous_id: None,
        context: json!({"provider": "bench", "first_sign_in": true})
            .as_object()
            .unwrap()
            .clone(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn sign_in_to_delivery(store: &Store, sink: &Sink, settings: &SinkSettings) {
    let stop = CancellationToken::new();
    tokio::spawn(Worker::new(store.clone(), settings.clone(), "bench-a").run(stop.clone()));
    let mut samples = Vec::new();
    for i in 0..50 {
        let before = sink.count.load(Ordering::SeqCst);
        let record = SignIn {
            provider: "bench".into(),
            issuer: "https://idp.example".into(),
            subject: format!("subject-{i}"),
            email: Some(format!("user{i}@example.com")),
            email_verified: true,
            traits: json!({"enrichment_full_name": "Bench User"}),
            provenance: json!({}),
            provider_created_at: None,
            at: Utc::now(),
            link_by_email: false,
            avatar: None,
        };
        let outbox = |o: &SignInOutcome| {
            let created = identify_bridge::traits::format_time(o.created_at);
            vec![to_row(settings, message(&o.user_id, &created), Utc::now())]
        };
        let started = Instant::now();
        store.record_sign_in(&record, &outbox).await.unwrap();
        worker::wake();
        while sink.count.load(Ordering::SeqCst) == before {
            let _ = tokio::time::timeout(Duration::from_millis(5), sink.arrived.notified()).await;
        }
        samples.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    samples.sort();
    println!(
        "(a) sign-in to delivery, 50 sign-ins: median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.95).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3
    );
}

async fn drain(store: &Store, sink: &Sink, settings: &SinkSettings, n: usize) -> f64 {
    let started = Instant::now();
    let now = Utc::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|i| {
                to_row(
                    settings,
                    message(&format!("user-{i}"), "2024-01-02T03:04:05.678Z"),
                    now,
                )
            })
            .collect();
        store.enqueue(&rows).await.unwrap();
    }
    println!(
        "    queued {n} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let base = sink.count.load(Ordering::SeqCst);
    let stop = CancellationToken::new();
    let started = Instant::now();
    tokio::spawn(Worker::new(store.clone(), settings.clone(), "bench-b").run(stop.clone()));
    while sink.count.load(Ordering::SeqCst) - base < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    stop.cancel();
    let rate = n as f64 / secs;
    println!("(b) backlog drain: {n} messages in {secs:.1} s = {rate:.0} messages/s");
    rate
}

/// Raw POSTs of one identify body, 16 at a time, like the worker's sends.
async fn baseline(sink: &Sink, n: usize) -> f64 {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let body = serde_json::to_vec(&message("user-x", "2024-01-02T03:04:05.678Z")).unwrap();
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|_| {
            let request = client
                .post(&sink.url)
                .header("content-type", "application/json")
                .header("idempotency-key", Uuid::new_v4().to_string())
                .body(body.clone());
            async move { request.send().await.unwrap().status() }
        })
        .buffer_unordered(16)
        .for_each(|_| async {})
        .await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    println!("    baseline: raw HTTP POSTs to the same sink, 16 in flight: {rate:.0} requests/s");
    rate
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::connect(&url).await.unwrap();
    let sink = start_sink().await;
    let settings: SinkSettings =
        serde_json::from_value(json!({"name": "bench", "url": sink.url, "api_key": "k"})).unwrap();
    sign_in_to_delivery(&store, &sink, &settings).await;
    let rate = drain(&store, &sink, &settings, n).await;
    let raw = baseline(&sink, n.min(20_000)).await;
    println!("    ratio: outbox drain / raw HTTP = {:.2}", rate / raw);
}
