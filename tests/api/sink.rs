//! A test sink: a real HTTP server on 127.0.0.1 that records every request and answers as
//! the test tells it (a script of replies, then 200).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub delay: Duration,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            retry_after: None,
            delay: Duration::ZERO,
            body: Vec::new(),
        }
    }
    pub fn retry_after(mut self, v: &str) -> Reply {
        self.retry_after = Some(v.into());
        self
    }
    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Reply {
        self.body = b.into();
        self
    }
}

/// What the sink received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub headers: HeaderMap,
    pub body: Value,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Reply>>,
    /// Applied to every reply after the script runs out.
    default_delay: Mutex<Duration>,
    /// Requests carrying one of these `user_id`s are refused with a 400, as a real API
    /// refuses a whole batch for one bad item.
    refused_users: Mutex<Vec<String>>,
}

#[derive(Clone)]
pub struct TestSink {
    pub url: String,
    pub port: u16,
    inner: Arc<Inner>,
}

impl TestSink {
    pub async fn start() -> TestSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        TestSink::start_on(listener)
    }

    pub fn start_on(listener: tokio::net::TcpListener) -> TestSink {
        let port = listener.local_addr().unwrap().port();
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .fallback(record)
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestSink {
            url: format!("http://127.0.0.1:{port}/api/identify"),
            port,
            inner,
        }
    }

    /// Answer the next requests with these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    /// Refuse (400) every request that carries this `user_id`, alone or in a batch.
    pub fn refuse_user(&self, user_id: &str) {
        self.inner
            .refused_users
            .lock()
            .unwrap()
            .push(user_id.into());
    }

    pub fn set_delay(&self, d: Duration) {
        *self.inner.default_delay.lock().unwrap() = d;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// Wait until at least `n` requests arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the sink got {} of {n} requests in {timeout:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn record(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let items = match &body {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    let refused = items.iter().find_map(|item| {
        let user = item["user_id"].as_str()?;
        let refused = inner.refused_users.lock().unwrap();
        refused.iter().any(|u| u == user).then(|| user.to_string())
    });
    let reply = match refused {
        Some(user) => Some(Reply::status(400).body(format!(
            r#"{{"status":"error","message":"user_id {user} is not accepted","error_code":"INVALID_REQUEST"}}"#
        ))),
        None => inner.script.lock().unwrap().pop_front(),
    };
    inner.requests.lock().unwrap().push(Recorded {
        headers,
        body,
        at: Instant::now(),
    });
    let reply = reply.unwrap_or_else(|| {
        Reply::status(200)
            .delay(*inner.default_delay.lock().unwrap())
            .body(r#"{"status":"success"}"#)
    });
    tokio::time::sleep(reply.delay).await;
    let mut response = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    if let Some(v) = reply.retry_after {
        response = response.header("retry-after", v);
    }
    response.body(Body::from(reply.body)).unwrap()
}
