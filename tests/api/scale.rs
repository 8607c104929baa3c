//! Production behaviour across replicas: 200 sign-ins over two replicas make 200 profiles and
//! 200 identify calls delivered once each; a replica killed mid-delivery leaves the rest to the
//! other; rate limits answer 429 and recover; metrics move.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use identify_bridge::store::{OutboxStatus, Store};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::poll;
use crate::helpers::{location, spawn_app_with, AppOptions};
use crate::outbox_faults::{new_message, sink_settings};
use crate::pg::TestDatabase;
use crate::replicas::{browser, spawn_replicas};
use crate::sink::{Recorded, TestSink};

fn count_by_key(requests: &[Recorded]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in requests {
        *counts
            .entry(r.header("idempotency-key").unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_sign_ins_over_two_replicas_make_200_profiles_each_delivered_once() {
    let sink = TestSink::start().await;
    let sinks = format!(
        "[[sinks]]\nname = \"analytics\"\nurl = \"{}\"\napi_key = \"k\"\nbackoff_base_ms = 50\nbackoff_cap_secs = 1\n",
        sink.url
    );
    let r = std::sync::Arc::new(spawn_replicas(2, "[session]\nstore = \"database\"", &sinks).await);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (r, next) = (r.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= 200 {
                    return;
                }
                let client = browser();
                let callback = r
                    .start_on(&client, i % 2, (i + 1) % 2, &format!("person-{i}"))
                    .await;
                let done = client.get(callback).send().await.unwrap();
                assert_eq!(done.status(), StatusCode::SEE_OTHER, "sign-in {i}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let store = Store::connect(&r.database_url).await.unwrap();
    assert_eq!(store.profile_count().await.unwrap(), 200);
    let requests = sink.wait_for(200, Duration::from_secs(60)).await;
    // Count once every row is delivered: nothing sends a delivered row again, and the sink
    // records a request before it answers, so any duplicate is already in.
    poll(
        "all 200 rows delivered",
        Duration::from_secs(30),
        || async {
            let stats = store.outbox_stats(chrono::Utc::now()).await.unwrap();
            (stats[0].delivered == 200).then_some(())
        },
    )
    .await;
    let counts = count_by_key(&sink.requests());
    assert_eq!(
        counts.len(),
        200,
        "200 distinct identify calls ({} requests)",
        requests.len()
    );
    assert!(
        counts.values().all(|&c| c == 1),
        "a message was delivered twice: {counts:?}"
    );
    let users: std::collections::HashSet<String> = sink
        .requests()
        .iter()
        .map(|r| r.body["user_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(users.len(), 200, "one identify call per profile");
    store.close().await;
}

fn spawn_bridge(config: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_identify-bridge"))
        .args(["serve", "--config"])
        .arg(config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the bridge")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_delivery_leaves_its_messages_to_the_other() {
    let db = TestDatabase::create().await;
    let store = Store::connect(&db.url).await.unwrap();
    let sink = TestSink::start().await;
    sink.set_delay(Duration::from_millis(100));
    let settings = sink_settings(&sink.url, json!({}));
    let msgs: Vec<_> = (0..120)
        .map(|i| new_message(&settings, &format!("user-{i}")))
        .collect();
    store.enqueue(&msgs).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    for i in 0..2 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join(format!("replica-{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
                 [database]\nurl = \"{}\"\n[log]\nlevel = \"warn\"\n\
                 [[sinks]]\nname = \"{}\"\nurl = \"{}\"\napi_key = \"k\"\n\
                 backoff_base_ms = 50\nbackoff_cap_secs = 1\ntimeout_secs = 2\nbatch_size = 16\n",
                db.url, settings.name, sink.url
            ),
        )
        .unwrap();
        children.push(spawn_bridge(&config));
    }
    sink.wait_for(30, Duration::from_secs(30)).await;
    let mut killed = children.remove(0);
    killed.start_kill().unwrap(); // SIGKILL
    killed.wait().await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut undelivered = 0;
        for m in &msgs {
            if store
                .get_message(m.message_id)
                .await
                .unwrap()
                .unwrap()
                .status
                != OutboxStatus::Delivered
            {
                undelivered += 1;
            }
        }
        if undelivered == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{undelivered} still undelivered after the kill"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let counts = count_by_key(&sink.requests());
    assert_eq!(counts.len(), msgs.len(), "every message reached the sink");
    let ids: std::collections::HashSet<String> =
        msgs.iter().map(|m| m.message_id.to_string()).collect();
    assert!(
        counts.keys().all(|k| ids.contains(k)),
        "any duplicate carries a known message_id"
    );
    store.close().await;
}

#[tokio::test]
async fn login_rate_limits_answer_429_and_recover() {
    let app = spawn_app_with(AppOptions {
        extra_toml: "[rate_limit]\nlogin_per_minute = 60\nlogin_burst = 3\n".into(),
        ..Default::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(app.get("/login/google").await.status());
    }
    assert_eq!(&statuses[..3], &[StatusCode::SEE_OTHER; 3], "{statuses:?}");
    let limited = app.get("/login/google").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert!(limited.text().await.unwrap().contains("Too many requests"));
    // Other routes are not limited.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    poll(
        "the login limit recovers",
        Duration::from_secs(3 * retry_after),
        || async {
            (app.get("/login/google").await.status() == StatusCode::SEE_OTHER).then_some(())
        },
    )
    .await;
}

fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|lab| l.contains(lab)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_count_sign_ins_failures_and_deliveries() {
    let sink = TestSink::start().await;
    let app = spawn_app_with(AppOptions {
        extra_toml: format!(
            "[[sinks]]\nname = \"metrics-sink\"\nurl = \"{}\"\napi_key = \"k\"\n",
            sink.url
        ),
        ..Default::default()
    })
    .await;
    let before = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        app.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    let bad = app.start_sign_in("login_hint=deny").await;
    assert_eq!(
        app.client.get(bad).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    sink.wait_for(1, Duration::from_secs(10)).await;
    // The worker counts the delivery after the sink has answered: poll for it rather than
    // guess how long that takes on a busy machine.
    let delivered = ["sink=\"metrics-sink\"", "outcome=\"delivered\""];
    let mut after = String::new();
    for _ in 0..100 {
        after = app.get("/metrics").await.text().await.unwrap();
        if metric(&after, "identify_bridge_deliveries_total", &delivered) >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let success = ["provider=\"google\"", "outcome=\"success\""];
    assert!(
        metric(&after, "identify_bridge_sign_ins_total", &success)
            > metric(&before, "identify_bridge_sign_ins_total", &success),
        "{after}"
    );
    let denied = ["provider=\"google\"", "reason=\"provider_denied\""];
    assert!(
        metric(&after, "identify_bridge_sign_ins_total", &denied)
            > metric(&before, "identify_bridge_sign_ins_total", &denied)
    );
    assert!(
        metric(&after, "identify_bridge_deliveries_total", &delivered) >= 1.0,
        "{after}"
    );
    assert!(after.contains("identify_bridge_callback_seconds"));
    assert!(
        after.contains(
            "identify_bridge_provider_call_seconds_count{provider=\"google\",stage=\"token\"}"
        ),
        "{after}"
    );
    assert!(
        after.contains(
            "identify_bridge_provider_call_seconds_count{provider=\"google\",stage=\"userinfo\"}"
        ),
        "{after}"
    );
    assert!(after.contains("identify_bridge_outbox_pending{sink=\"metrics-sink\"}"));
    let _ = location;
}

#[tokio::test]
async fn metrics_can_move_to_their_own_listen_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(AppOptions {
        extra_toml: String::new(),
        metrics_listen: Some(format!("127.0.0.1:{port}")),
        ..Default::default()
    })
    .await;
    assert_eq!(
        app.sign_in("google-consumer", None).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    let separate = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(separate.status(), StatusCode::OK);
    assert!(separate
        .text()
        .await
        .unwrap()
        .contains("identify_bridge_sign_ins_total"));
}
