//! Sign-in benchmark (not a test): complete sign-ins (login → provider → callback → `/me`)
//! through the test OpenID provider against release-built replicas, at a fixed concurrency.
//!
//! `cargo bench --bench signin` (env `SIGNINS`, default 2000; `CONCURRENCY`, default 32;
//! `BENCH_DATABASE=postgres` (default: two replicas sharing one PostgreSQL database, each
//! sign-in begun on one and finished on the other) or `sqlite` (one replica on an SQLite
//! file); `SESSION_STORE` (`database`, default, or `redis`/`memory`); `BRIDGE_BINARY` to run a
//! given build instead of building the release binary).
//! Reports sign-ins/s, p50/p99 latency of the bridge's three requests (`/login/{p}`, the
//! callback, which includes the bridge's own calls to the provider's token and userinfo
//! endpoints, and `/me`), the bridge CPU time per sign-in and peak RSS per replica (from
//! /proc; also the RSS when ready and idle, before the first sign-in), the test provider's CPU
//! per sign-in, and as a same-run baseline the latency of the
//! provider's part of the same flow, with the ratio.
//!
//! The replicas run as deployed: default log level (`info`, JSON to stdout, discarded here)
//! and one `[[sinks]]` (a local HTTP endpoint in this process), so each sign-in also writes
//! its identify message to the outbox and a replica delivers it. CPU is read only after every
//! message has reached the sink, so the delivery work is counted.

#[path = "../tests/api/idp.rs"]
mod idp;

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idp::{IdpClient, TestIdp};
use sqlx::Executor;

const SECRET: &str = "bench-client-secret-0123456789";

/// A sink that accepts every identify call; returns its URL and the count of calls.
async fn start_sink() -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = axum::Router::new().fallback(move |_body: axum::body::Bytes| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            r#"{"status":"success"}"#
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/identify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of /proc/pid/stat (11 and 12 after the name).
    (ticks(11) + ticks(12)) / 100.0
}

fn proc_peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Resident set size now (MB), from /proc.
fn proc_rss_mb(pid: u32) -> f64 {
    proc_status_mb(pid, "VmRSS:")
}

/// A size line of /proc/{pid}/status, in MB (`RssAnon:`: the process's own memory — heap,
/// stacks; `RssFile:`: pages of the binary and libraries mapped in, shared and reclaimable).
fn proc_status_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total: usize = std::env::var("SIGNINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let concurrency: usize = std::env::var("CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let sqlite = match std::env::var("BENCH_DATABASE").as_deref() {
        Ok("sqlite") => true,
        Ok("postgres") | Err(_) => false,
        Ok(other) => panic!("BENCH_DATABASE is sqlite or postgres, not {other:?}"),
    };
    let session_store = std::env::var("SESSION_STORE").unwrap_or_else(|_| "database".into());
    let root = env!("CARGO_MANIFEST_DIR");
    // BRIDGE_BINARY: run a given build instead (A/B comparisons of two builds in turn).
    let binary = match std::env::var("BRIDGE_BINARY") {
        Ok(binary) => binary,
        Err(_) => {
            let status = std::process::Command::new("cargo")
                .args(["build", "--release", "--locked", "--bin", "identify-bridge"])
                .current_dir(root)
                .status()
                .expect("cargo build");
            assert!(status.success());
            format!("{root}/target/release/identify-bridge")
        }
    };

    // Two ports (one on SQLite); the first is the public URL (the "load balancer").
    let replicas = if sqlite { 1 } else { 2 };
    let ports: Vec<u16> = (0..replicas)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let public = format!("http://127.0.0.1:{}", ports[0]);
    let idp = TestIdp::start(
        "",
        vec![IdpClient::web(
            "google",
            SECRET,
            &format!("{public}/callback/google"),
        )],
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let admin = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .expect("PostgreSQL");
    let db = format!("ib_bench_{}", uuid::Uuid::new_v4().simple());
    let db_url = if sqlite {
        format!("sqlite://{}", dir.path().join("bench.db").display())
    } else {
        admin
            .execute(format!("create database {db}").as_str())
            .await
            .unwrap();
        format!("postgres://postgres@127.0.0.1:5432/{db}")
    };
    let (sink_url, delivered) = start_sink().await;
    let mut children = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{public}\"\n[session]\nstore = \"{session_store}\"\nredis_url = \"redis://127.0.0.1:6379/0\"\nsecret = \"bench-session-key-shared-by-the-replicas-0123\"\n[database]\nurl = \"{db_url}\"\n[rate_limit]\nlogin_per_minute = 0\n[[providers]]\nname = \"google\"\nkind = \"google\"\nissuer = \"{}\"\nclient_id = \"google\"\nclient_secret = \"{SECRET}\"\n[[sinks]]\nname = \"bench\"\nformat = \"seed\"\nurl = \"{sink_url}\"\napi_key = \"bench-sink-key\"\n",
            idp.issuer
        );
        let path = dir.path().join(format!("r{i}.toml"));
        std::fs::write(&path, toml).unwrap();
        let child = tokio::process::Command::new(&binary)
            .args(["serve", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        children.push(child);
    }
    let probe = reqwest::Client::new();
    for port in &ports {
        for _ in 0..200 {
            if let Ok(r) = probe
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await
            {
                if r.status().is_success() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let pids: Vec<u32> = children.iter().map(|c| c.id().unwrap()).collect();
    // Idle: started, ready (providers discovered, probes answered), nothing else yet; a second
    // for start-up's work (migrations, the first outbox poll) to settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss: Vec<f64> = pids.iter().map(|p| proc_rss_mb(*p)).collect();
    let idle_split: Vec<(f64, f64)> = pids
        .iter()
        .map(|p| {
            (
                proc_status_mb(*p, "RssAnon:"),
                proc_status_mb(*p, "RssFile:"),
            )
        })
        .collect();
    let idp_pid = idp.pid().expect("the test provider runs");
    let cpu_before: f64 = pids.iter().map(|p| proc_cpu_seconds(*p)).sum();
    let idp_cpu_before = proc_cpu_seconds(idp_pid);

    let bridge_latencies = Arc::new(tokio::sync::Mutex::new(Vec::with_capacity(total)));
    let idp_latencies = Arc::new(tokio::sync::Mutex::new(Vec::with_capacity(total)));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (ports, idp_base, public) = (ports.clone(), idp.base_url(), public.clone());
        let (bl, il, next) = (
            bridge_latencies.clone(),
            idp_latencies.clone(),
            next.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .cookie_store(true)
                    .build()
                    .unwrap();
                let (start, finish) = (ports[i % ports.len()], ports[(i + 1) % ports.len()]);
                let t = Instant::now();
                let r = client
                    .get(format!(
                        "http://127.0.0.1:{start}/login/google?login_hint=bench-user-{i}"
                    ))
                    .send()
                    .await
                    .unwrap();
                let mut bridge = t.elapsed();
                let mut loc = location(&r);
                let t = Instant::now();
                while !loc.starts_with(&public) {
                    let target = url::Url::parse(&idp_base).unwrap().join(&loc).unwrap();
                    loc = location(&client.get(target).send().await.unwrap());
                }
                let provider = t.elapsed();
                let callback = loc.replacen(&public, &format!("http://127.0.0.1:{finish}"), 1);
                let t = Instant::now();
                let done = client.get(callback).send().await.unwrap();
                assert_eq!(done.status(), reqwest::StatusCode::SEE_OTHER);
                let me = client
                    .get(format!("http://127.0.0.1:{start}/me"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(me.status(), reqwest::StatusCode::OK);
                bridge += t.elapsed();
                bl.lock().await.push(bridge);
                il.lock().await.push(provider);
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    // The identify calls are part of each sign-in's work: wait until all have been delivered.
    let drain = Instant::now();
    while delivered.load(Ordering::SeqCst) < total && drain.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = drain.elapsed();
    let cpu_after: f64 = pids.iter().map(|p| proc_cpu_seconds(*p)).sum();
    let idp_cpu_after = proc_cpu_seconds(idp_pid);
    let rss: Vec<f64> = pids.iter().map(|p| proc_peak_rss_mb(*p)).collect();
    let mut bridge = bridge_latencies.lock().await.clone();
    let mut provider = idp_latencies.lock().await.clone();
    bridge.sort();
    provider.sort();
    let count = "select count(*) from profile";
    let profiles: i64 = if sqlite {
        let pool = sqlx::SqlitePool::connect(&db_url).await.unwrap();
        sqlx::query_scalar(count).fetch_one(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
        sqlx::query_scalar(count).fetch_one(&pool).await.unwrap()
    };

    let per_signin_cpu_ms = (cpu_after - cpu_before) * 1000.0 / total as f64;
    let idp_cpu_ms = (idp_cpu_after - idp_cpu_before) * 1000.0 / total as f64;
    println!(
        "sign-ins: {total} at concurrency {concurrency} over {replicas} replica(s) on {}, {session_store} sessions",
        if sqlite { "SQLite" } else { "PostgreSQL" }
    );
    println!("profiles created: {profiles}");
    println!(
        "throughput: {:.1} sign-ins/s ({:.2} s)",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "bridge part (login + callback incl. its token/userinfo calls): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&bridge, 0.5).as_secs_f64() * 1000.0,
        percentile(&bridge, 0.99).as_secs_f64() * 1000.0
    );
    println!(
        "baseline, provider part (authorize + interaction redirects): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&provider, 0.5).as_secs_f64() * 1000.0,
        percentile(&provider, 0.99).as_secs_f64() * 1000.0
    );
    println!(
        "ratio bridge/provider at p50: {:.2}",
        percentile(&bridge, 0.5).as_secs_f64() / percentile(&provider, 0.5).as_secs_f64().max(1e-9)
    );
    println!(
        "identify calls delivered to the sink: {} ({:.2} s after the last sign-in)",
        delivered.load(Ordering::SeqCst),
        drained.as_secs_f64()
    );
    println!("bridge CPU per sign-in: {per_signin_cpu_ms:.3} ms (all replicas, user+system, incl. delivery)");
    println!("test provider CPU per sign-in: {idp_cpu_ms:.3} ms (same run)");
    println!(
        "idle RSS per replica (ready, before the first sign-in): {}",
        idle_rss
            .iter()
            .zip(&idle_split)
            .map(|(r, (anon, file))| format!(
                "{r:.1} MB (anonymous {anon:.1}, file-backed {file:.1})"
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "peak RSS per replica: {}",
        rss.iter()
            .map(|r| format!("{r:.1} MB"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    drop(children);
    if !sqlite {
        admin
            .execute(format!("drop database if exists {db} with (force)").as_str())
            .await
            .ok();
    }
}
