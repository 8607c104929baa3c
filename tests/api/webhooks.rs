//! Signed deliveries (Standard Webhooks) checked by an implementation that is not ours: the
//! `standardwebhooks` npm package in `tests/idp/webhook-receiver.mjs`, one secret per path.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use identify_bridge::outbox::signing::Signer;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::harness::poll;
use crate::helpers::{spawn_app_with, AppOptions, Kind};
use crate::idp::{ensure_node_modules, idp_dir};

const WAIT: Duration = Duration::from_secs(15);

/// `whsec_` + base64 of 32 bytes of `byte`.
fn secret(byte: u8) -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    )
}

/// The node receiver; killed when dropped (and it exits when our end of its stdin closes).
struct Receiver {
    url: String,
    _child: Child,
    _stdin: ChildStdin,
    http: reqwest::Client,
}

impl Receiver {
    /// A receiver whose `path` verifies with `secret`, for each pair.
    async fn start(secrets: &[(&str, &str)]) -> Receiver {
        ensure_node_modules().await;
        let secrets: serde_json::Map<String, Value> = secrets
            .iter()
            .map(|(p, s)| (p.to_string(), json!(s)))
            .collect();
        let mut child = Command::new("node")
            .arg(idp_dir().join("webhook-receiver.mjs"))
            .current_dir(idp_dir())
            .env("RECEIVER_SECRETS", Value::Object(secrets).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the webhook receiver");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the receiver's ready line within 30 s")
            .unwrap()
            .expect("the receiver exited before its ready line");
        let port = serde_json::from_str::<Value>(&ready).unwrap()["port"]
            .as_u64()
            .unwrap();
        Receiver {
            url: format!("http://127.0.0.1:{port}"),
            _stdin: child.stdin.take().unwrap(),
            _child: child,
            http: reqwest::Client::new(),
        }
    }

    async fn received(&self) -> Vec<Value> {
        let answer = self
            .http
            .get(format!("{}/__received", self.url))
            .send()
            .await;
        answer.unwrap().json().await.unwrap()
    }

    /// Post `body` with these `webhook-*` headers; the receiver's status and reason.
    async fn post(&self, path: &str, headers: &Value, body: &str) -> (u16, String) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .body(body.to_string());
        for (name, value) in headers.as_object().unwrap() {
            request = request.header(name, value.as_str().unwrap());
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

fn sink(name: &str, format: &str, url: &str, secrets: &[&str], extra: &str) -> String {
    let secrets: Vec<String> = secrets.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "[[sinks]]\nname = \"{name}\"\nformat = \"{format}\"\nurl = \"{url}\"\n\
         signing_secrets = [{}]\nbackoff_base_ms = 50\nbackoff_cap_secs = 1\n{extra}\n",
        secrets.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_deliveries_verify_with_the_standard_webhooks_library_through_a_rotation() {
    let (old, new, unknown) = (secret(1), secret(2), secret(3));
    let receiver = Receiver::start(&[("/old", &old), ("/new", &new), ("/other", &unknown)]).await;
    let url = |path: &str| format!("{}{path}", receiver.url);
    // Mid-rotation: both secrets sign. One receiver still knows only the old secret, one
    // already the new; a third knows neither.
    let toml = sink("hooks", "webhook", &url("/old"), &[&new, &old], "")
        + &sink(
            "seed",
            "seed",
            &url("/new"),
            &[&new, &old],
            "api_key = \"k\"",
        )
        + &sink("stranger", "webhook", &url("/other"), &[&new], "");
    let app = spawn_app_with(AppOptions {
        kind: Kind::Google,
        extra_toml: toml,
        ..Default::default()
    })
    .await;
    let callback = app
        .start_sign_in("login_hint=google-workspace&anonymous_id=anon-7")
        .await;
    assert!(app
        .client
        .get(callback)
        .send()
        .await
        .unwrap()
        .status()
        .is_redirection());
    let (_, me) = app.me().await;

    let received = poll("three signed deliveries", WAIT, || async {
        let got = receiver.received().await;
        (got.len() >= 3).then_some(got)
    })
    .await;
    let at = |path: &str| {
        received
            .iter()
            .find(|r| r["path"] == path)
            .unwrap_or_else(|| panic!("nothing at {path}: {received:#?}"))
            .clone()
    };
    let (hooks, seed, stranger) = (at("/old"), at("/new"), at("/other"));
    assert_eq!(hooks["verified"], true, "{hooks:#}");
    assert_eq!(seed["verified"], true, "any format may sign: {seed:#}");
    assert_eq!(stranger["verified"], false, "{stranger:#}");
    assert_eq!(stranger["error"], "No matching signature found");
    let signatures = hooks["headers"]["webhook-signature"].as_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert!(signatures.split(' ').all(|s| s.starts_with("v1,")));

    // The webhook format's plain event.
    let event: Value = serde_json::from_str(hooks["body"].as_str().unwrap()).unwrap();
    assert_eq!(event["type"], "identify");
    assert_eq!(
        event["id"], hooks["headers"]["webhook-id"],
        "webhook-id is the message id"
    );
    assert_eq!(event["user_id"], me["user_id"]);
    assert_eq!(event["anonymous_id"], "anon-7");
    assert_eq!(event["first_sign_in"], true);
    assert_eq!(event["created_at"], me["created_at"]);
    assert_eq!(event["traits"]["email"], "marcus.chen@acme.io");
    assert_eq!(event["context"]["provider"], "google");
    assert!(event["time"].is_string());

    // The refused delivery is a dead letter, the others are delivered.
    poll("one dead letter, two delivered", WAIT, || async {
        let stats = app.store.outbox_stats(chrono::Utc::now()).await.unwrap();
        let delivered: i64 = stats.iter().map(|s| s.delivered).sum();
        let dead: i64 = stats.iter().map(|s| s.dead).sum();
        (delivered == 2 && dead == 1).then_some(())
    })
    .await;

    // A tampered body is refused by the receiver, with the bridge's own valid headers.
    let body = hooks["body"].as_str().unwrap();
    let tampered = body.replace("marcus.chen@acme.io", "mallory@evil.example");
    assert_ne!(tampered, body);
    let (status, reason) = receiver.post("/old", &hooks["headers"], &tampered).await;
    assert_eq!(
        (status, reason.as_str()),
        (400, r#"{"error":"No matching signature found"}"#)
    );

    // A correct signature over an old timestamp is refused too; the same signature made now
    // passes (so it is the age the receiver refuses).
    let signer = Signer::new(&[identify_bridge::config::signing_key(&old).unwrap()]);
    let id = hooks["headers"]["webhook-id"].as_str().unwrap();
    let sign = |timestamp: i64| {
        let headers = signer.headers(id, timestamp, body.as_bytes());
        let pairs: serde_json::Map<String, Value> = headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        Value::Object(pairs)
    };
    let now = chrono::Utc::now().timestamp();
    let (status, reason) = receiver.post("/old", &sign(now - 600), body).await;
    assert_eq!(
        (status, reason.as_str()),
        (400, r#"{"error":"Message timestamp too old"}"#)
    );
    let (status, _) = receiver.post("/old", &sign(now), body).await;
    assert_eq!(status, 204);
}
