//! Failed authentication is throttled per client over real HTTP: after ten wrong keys in a
//! minute, the dashboard, the admin API and the Identify API answer 429 with `Retry-After`, to
//! the right key too, while other clients are unaffected. (That the right key works again once
//! the minute is over is shown with a short window in `src/auth_throttle.rs`.)

use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{spawn_app_with, AppOptions};
use crate::identify::{key_hash, KEY};

const ADMIN_KEY: &str = "throttle-test-admin-key";

/// `Retry-After` in seconds, checked to be within the minute.
#[track_caller]
fn retry_after(response: &reqwest::Response) -> u64 {
    let secs: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&secs), "Retry-After {secs}");
    secs
}

#[tokio::test]
async fn ten_wrong_admin_keys_in_a_minute_make_the_client_wait_even_with_the_right_key() {
    let hash = hex::encode(Sha256::digest(ADMIN_KEY.as_bytes()));
    let app = spawn_app_with(AppOptions {
        extra_toml: format!("[admin]\napi_key_hashes = [\"{hash}\"]\n"),
        ..Default::default()
    })
    .await;
    let admin = |key: &str, path: &str| {
        app.client
            .get(app.url(path))
            .basic_auth("admin", Some(key))
            .send()
    };
    assert_eq!(
        admin(ADMIN_KEY, "/admin").await.unwrap().status(),
        StatusCode::OK
    );
    for i in 0..10 {
        let path = if i % 2 == 0 {
            "/admin"
        } else {
            "/api/users/nobody"
        };
        let wrong = admin(&format!("guess-{i}"), path).await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    for path in ["/admin", "/api/users/nobody"] {
        let refused = admin(ADMIN_KEY, path).await.unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        retry_after(&refused);
    }
    // Routes without a key are not throttled.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn ten_wrong_api_keys_in_a_minute_answer_429_in_the_spec_error_shape() {
    let app = spawn_app_with(AppOptions {
        extra_toml: format!(
            "[identify_api]\nrequire = [\"key\"]\napi_key_hashes = [\"{}\"]\n",
            key_hash(KEY)
        ),
        ..Default::default()
    })
    .await;
    let identify = |key: &str| {
        app.client
            .post(app.url("/api/identify"))
            .header("KEY", key)
            .json(&json!({"user_id": "u1"}))
            .send()
    };
    assert_eq!(identify(KEY).await.unwrap().status(), StatusCode::OK);
    for i in 0..10 {
        let wrong = identify(&format!("wrong-{i}")).await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "wrong key {i}");
    }
    let refused = identify(KEY).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    retry_after(&refused);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["error_code"], "RATE_LIMITED", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("retry after"),
        "{body}"
    );
}
