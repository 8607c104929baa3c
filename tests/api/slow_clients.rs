//! Slow clients cannot hold the server: real sockets that send a header one line a second,
//! idle, trickle a body, or crowd the connection cap, and a shutdown with a request half sent.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{AppBuilder, RunningApp};
use crate::identify::{key_hash, KEY};

/// The limits under test, small so the tests are quick.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
const BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// How late after its timeout a connection may still be closed (a loaded test machine).
const SLACK: Duration = Duration::from_secs(2);

/// The bridge with the Identify API open to [`KEY`], the limits under test, and `server`
/// lines in `[server]` (which win).
async fn bridge(server: &str) -> RunningApp {
    let mut lines = server.to_string();
    for (key, value) in [
        ("header_read_timeout_secs", HEADER_TIMEOUT),
        ("idle_timeout_secs", IDLE_TIMEOUT),
        ("body_read_timeout_secs", BODY_TIMEOUT),
    ] {
        if !server.contains(key) {
            lines.push_str(&format!("\n{key} = {}", value.as_secs()));
        }
    }
    AppBuilder::new()
        .toml(&format!(
            "[server]\n{lines}\n[identify_api]\nrequire = [\"key\"]\napi_key_hashes = [\"{}\"]\n",
            key_hash(KEY)
        ))
        .start()
        .await
}

async fn connect(app: &RunningApp) -> TcpStream {
    TcpStream::connect(("127.0.0.1", app.port)).await.unwrap()
}

/// Read until the server closes the connection (or resets it); what it sent, and when.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Instant) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        read.is_ok(),
        "still open after {within:?}; received {text:?}"
    );
    (text, Instant::now())
}

#[tokio::test]
async fn a_header_sent_one_line_a_second_is_cut_off_at_the_header_timeout() {
    let app = bridge("").await;
    let stream = connect(&app).await;
    let started = Instant::now();
    let (mut read, mut write) = stream.into_split();
    let trickle = tokio::spawn(async move {
        let _ = write.write_all(b"GET /healthz HTTP/1.1\r\n").await;
        for i in 0.. {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if write
                .write_all(format!("x-line-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return i;
            }
        }
        unreachable!()
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(HEADER_TIMEOUT + SLACK, async {
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a trickled header held the connection");
    assert!(started.elapsed() >= HEADER_TIMEOUT - Duration::from_millis(200));
    trickle.abort();
}

#[tokio::test]
async fn an_idle_connection_is_closed_at_the_idle_timeout_also_after_a_response() {
    let app = bridge("").await;
    // Idle from the start.
    let mut idle = connect(&app).await;
    let started = Instant::now();
    read_until_closed(&mut idle, IDLE_TIMEOUT + SLACK).await;
    assert!(started.elapsed() >= IDLE_TIMEOUT - Duration::from_millis(200));
    // Idle after a kept-alive response.
    let mut kept = connect(&app).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut kept, IDLE_TIMEOUT + SLACK + SLACK).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_trickled_one_byte_a_second_is_cut_off_at_the_body_timeout() {
    let app = bridge("").await;
    let stream = connect(&app).await;
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST /api/identify HTTP/1.1\r\nHost: x\r\nKEY: {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
    );
    write.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if write.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(BODY_TIMEOUT + SLACK, async {
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let answer = String::from_utf8_lossy(&seen);
    assert!(
        closed.is_ok(),
        "a trickled body held the connection: {answer}"
    );
    assert!(started.elapsed() >= BODY_TIMEOUT - Duration::from_millis(200));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    trickle.abort();
}

#[tokio::test]
async fn beyond_the_connection_cap_new_connections_wait_until_one_closes() {
    let app = bridge("max_connections = 2\nidle_timeout_secs = 30").await;
    let client = reqwest::Client::new();
    let healthz = || {
        client
            .get(app.url("/healthz"))
            .timeout(Duration::from_millis(700))
            .send()
    };
    assert!(healthz().await.is_ok());
    // reqwest keeps its connection: the cap is full with one more.
    let mut holders = vec![connect(&app).await];
    holders.push(connect(&app).await);
    let fresh = reqwest::Client::new();
    let refused = fresh
        .get(app.url("/healthz"))
        .timeout(Duration::from_millis(700))
        .send()
        .await;
    assert!(refused.is_err(), "a connection beyond the cap was served");
    holders.clear();
    drop(client);
    let served = fresh
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("served once a connection closed");
    assert!(served.status().is_success());
}

#[tokio::test]
async fn shutdown_with_a_half_sent_request_finishes_within_the_grace_period() {
    let grace = Duration::from_secs(2);
    let mut app = bridge(&format!(
        "shutdown_grace_secs = {}\nheader_read_timeout_secs = 60\nidle_timeout_secs = 60\n\
         body_read_timeout_secs = 60",
        grace.as_secs()
    ))
    .await;
    let mut half_header = connect(&app).await;
    half_header
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut half_body = connect(&app).await;
    let head = format!(
        "POST /api/identify HTTP/1.1\r\nHost: x\r\nKEY: {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    half_body.write_all(head.as_bytes()).await.unwrap();
    // Connections are accepted in order: once a later one is answered, both were accepted.
    let answered = reqwest::get(app.url("/healthz")).await.unwrap();
    assert!(answered.status().is_success());
    let took = app.shut_down().await;
    assert!(
        took <= grace + Duration::from_millis(500),
        "shutdown took {took:?} with a grace period of {grace:?}"
    );
    read_until_closed(&mut half_header, SLACK).await;
    read_until_closed(&mut half_body, SLACK).await;
}

#[tokio::test]
async fn beyond_max_requests_in_flight_an_identify_call_waits_unread_until_one_is_answered() {
    let app = AppBuilder::new()
        .toml(&format!(
            "[server]\nbody_read_timeout_secs = 30\n[identify_api]\nrequire = [\"key\"]\n\
             api_key_hashes = [\"{}\"]\nmax_requests_in_flight = 1\n",
            key_hash(KEY)
        ))
        .start()
        .await;
    // The first call takes the only turn: its header is in, its body half sent.
    let body = r#"{"user_id":"first","traits":{"enrichment_city":"Austin"}}"#;
    let (half, rest) = body.split_at(10);
    let mut first = connect(&app).await;
    let head = format!(
        "POST /api/identify HTTP/1.1\r\nHost: x\r\nKEY: {KEY}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{half}",
        body.len()
    );
    first.write_all(head.as_bytes()).await.unwrap();
    // The second, complete, waits for a turn.
    let url = app.url("/api/identify");
    let second = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .header("KEY", KEY)
            .json(&serde_json::json!({"user_id": "second"}))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!second.is_finished(), "the second call was not held back");
    // The first finishes; then the second gets its turn.
    first.write_all(rest.as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut first, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let status = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the second call is answered once the first is")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}
