//! Several deliverers and crashes: two workers on one PostgreSQL database never send a
//! message twice; a bridge killed with SIGKILL mid-delivery loses nothing after a restart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use identify_bridge::store::{OutboxStatus, Store};
use serde_json::json;
use uuid::Uuid;

use crate::outbox_faults::{new_message, run_worker, sink_settings, sqlite_store};
use crate::sink::{Recorded, TestSink};

/// Count requests per `Idempotency-Key` (= message id for one-message formats).
fn by_message_id(requests: &[Recorded]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in requests {
        *counts
            .entry(r.header("idempotency-key").unwrap().to_string())
            .or_insert(0) += 1;
    }
    counts
}

async fn all_delivered(store: &Store, sink: &str, n: i64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let stats = store.outbox_stats(chrono::Utc::now()).await.unwrap();
        let s = stats.iter().find(|s| s.sink == sink);
        if s.is_some_and(|s| s.delivered == n) {
            return;
        }
        assert!(Instant::now() < deadline, "not all delivered: {stats:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_on_one_postgres_database_send_each_message_once() {
    if std::env::var("IDENTIFY_BRIDGE_SKIP_POSTGRES").as_deref() == Ok("1") {
        eprintln!("IDENTIFY_BRIDGE_SKIP_POSTGRES=1: skipped");
        return;
    }
    let admin_url = std::env::var("DATABASE_URL_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("PostgreSQL reachable (or set IDENTIFY_BRIDGE_SKIP_POSTGRES=1)");
    let name = format!("ib_test_{}", Uuid::new_v4().simple());
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&name);
    let store = Store::connect(url.as_str()).await.unwrap();

    let sink = TestSink::start().await;
    sink.set_delay(Duration::from_millis(5));
    let settings = sink_settings(&sink.url, json!({}));
    let msgs: Vec<_> = (0..200)
        .map(|i| new_message(&settings, &format!("user-{i}")))
        .collect();
    store.enqueue(&msgs).await.unwrap();
    let a = run_worker(&store, &settings, "replica-a");
    let b = run_worker(&store, &settings, "replica-b");
    all_delivered(&store, "test", 200, Duration::from_secs(60)).await;
    a.cancel();
    b.cancel();
    let counts = by_message_id(&sink.requests());
    assert_eq!(counts.len(), 200);
    assert!(counts.values().all(|&n| n == 1), "a message was sent twice");
    for m in &msgs {
        assert!(counts.contains_key(&m.message_id.to_string()));
    }

    store.close().await;
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&admin)
        .await
        .unwrap();
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
async fn a_bridge_killed_mid_delivery_delivers_everything_after_a_restart() {
    let (store, dir) = sqlite_store().await;
    let sink = TestSink::start().await;
    sink.set_delay(Duration::from_millis(100));
    let settings = sink_settings(&sink.url, json!({}));
    let n = 120;
    let msgs: Vec<_> = (0..n)
        .map(|i| new_message(&settings, &format!("user-{i}")))
        .collect();
    store.enqueue(&msgs).await.unwrap();
    store.close().await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
             [database]\nurl = \"sqlite://{}\"\n[log]\nlevel = \"warn\"\n\
             [[sinks]]\nname = \"test\"\nurl = \"{}\"\napi_key = \"k\"\n\
             backoff_base_ms = 50\nbackoff_cap_secs = 1\ntimeout_secs = 2\nbatch_size = 32\n",
            dir.path().join("outbox.db").display(),
            sink.url
        ),
    )
    .unwrap();

    let mut bridge = spawn_bridge(&config);
    // Kill it while deliveries are in flight (16 at a time, 100 ms each).
    sink.wait_for(20, Duration::from_secs(20)).await;
    bridge.start_kill().unwrap(); // SIGKILL on unix
    bridge.wait().await.unwrap();
    let before_restart = sink.requests().len();
    assert!(before_restart < n, "everything went out before the kill");

    // The restarted process delivers the unclaimed rest at once, and the killed process's
    // claims when their leases run out (2 rounds × 2 × timeout_secs + 5 s = 13 s here).
    let mut bridge = spawn_bridge(&config);
    let store = Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("outbox.db").display()
    ))
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(100);
    loop {
        let pending: Vec<_> = {
            let mut p = Vec::new();
            for m in &msgs {
                let got = store.get_message(m.message_id).await.unwrap().unwrap();
                if got.status != OutboxStatus::Delivered {
                    p.push(got);
                }
            }
            p
        };
        if pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} still undelivered",
            pending.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bridge.start_kill().unwrap();
    bridge.wait().await.unwrap();
    let counts = by_message_id(&sink.requests());
    assert_eq!(counts.len(), n, "every message reached the sink");
    let ids: std::collections::HashSet<String> =
        msgs.iter().map(|m| m.message_id.to_string()).collect();
    assert!(
        counts.keys().all(|k| ids.contains(k)),
        "duplicates carry a known message_id"
    );
    store.close().await;
}
