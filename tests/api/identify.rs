//! `POST /api/identify` over real HTTP, with real client-credentials tokens from the test IdP.

use std::time::Duration;

use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::harness::poll;
use crate::helpers::{spawn_app_with, AppOptions, TestApp};
use crate::idp::{b64url_decode, b64url_encode, IdpClient, TestIdp};

pub(crate) const KEY: &str = "test-identify-key-0123456789";
pub(crate) const SERVICE: &str = "analytics-backend";
pub(crate) const SERVICE_SECRET: &str = "analytics-backend-secret-0123456789";

/// The specification's sample request, verbatim.
const SPEC_SAMPLE: &str = r#"{
  "user_id": "user123",
  "traits": {
    "name": "enrichment_first_name enrichment_last_name",
    "email": "enrichment_first_name.enrichment_last_name@example.com"
  },
  "timestamp": "20-11-23T22:28:55.111Z"
}"#;

pub(crate) fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// An app whose Identify API trusts its own test IdP; `extra` is added to `[identify_api]`.
pub(crate) struct Api {
    pub(crate) app: TestApp,
    pub(crate) token: String,
}

pub(crate) async fn spawn_api(extra: &str) -> Api {
    spawn_api_with(AppOptions::default(), extra).await
}

/// [`spawn_api`] with other options (a database, a provider kind); `options.extra_toml` goes
/// before `[identify_api]`.
pub(crate) async fn spawn_api_with(options: AppOptions, extra: &str) -> Api {
    let toml = format!(
        "{}\n[identify_api]\ntoken_issuer = \"{{idp_issuer}}\"\ntoken_audience = \"identify-api\"\n\
         api_key_hashes = [\"{}\"]\ntoken_leeway_secs = 0\n{extra}\n",
        options.extra_toml,
        key_hash(KEY)
    );
    let app = spawn_app_with(AppOptions {
        extra_toml: toml,
        ..options
    })
    .await;
    app.idp
        .add_client(IdpClient::service(SERVICE, SERVICE_SECRET))
        .await;
    let token = app
        .idp
        .client_credentials_token(SERVICE, SERVICE_SECRET, "telemetry_apis")
        .await;
    Api { app, token }
}

impl Api {
    /// POST with the spec's four headers and a raw body.
    pub(crate) async fn post_raw(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/api/identify"))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("KEY", KEY)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    async fn post(&self, body: &Value) -> (StatusCode, Value) {
        read(self.post_raw(body.to_string()).await).await
    }
}

pub(crate) async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, body)
}

/// The spec's error shape, with the expected code and a message containing `names`.
#[track_caller]
pub(crate) fn assert_error(
    status: StatusCode,
    body: &Value,
    want: StatusCode,
    code: &str,
    names: &str,
) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["error_code"], code, "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains(names),
        "message {message:?} does not name {names:?}"
    );
}

#[tokio::test]
async fn the_spec_sample_request_returns_the_spec_success_response() {
    let api = spawn_api("").await;
    let (status, body) = read(api.post_raw(SPEC_SAMPLE).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "status": "success",
            "message": "User identity updated successfully",
            "data": {
                "user_id": "user123",
                "traits": {
                    "name": "enrichment_first_name enrichment_last_name",
                    "email": "enrichment_first_name.enrichment_last_name@example.com"
                },
                "timestamp": "20-11-23T22:28:55.111Z"
            }
        })
    );
    let user = api
        .app
        .store
        .get_user("user123")
        .await
        .unwrap()
        .expect("profile created");
    assert_eq!(
        user.created_at.to_rfc3339(),
        "2020-11-23T22:28:55.111+00:00"
    );
    assert_eq!(user.created_at_source, "api");
    assert_eq!(
        user.traits["email"],
        "enrichment_first_name.enrichment_last_name@example.com"
    );
    let calls = api.app.store.identify_calls("user123").await.unwrap();
    assert_eq!(calls.len(), 1, "one call logged");
}

#[tokio::test]
async fn credentials_are_checked_with_the_spec_error_shape() {
    let api = spawn_api("").await;
    let url = api.app.url("/api/identify");
    let body = json!({"user_id": "u1", "traits": {"plan": "pro"}}).to_string();
    let no_scope = api
        .app
        .idp
        .client_credentials_token(SERVICE, SERVICE_SECRET, "")
        .await;
    let other_idp = TestIdp::start("", vec![IdpClient::service(SERVICE, SERVICE_SECRET)]).await;
    let foreign = other_idp
        .client_credentials_token(SERVICE, SERVICE_SECRET, "telemetry_apis")
        .await;
    // Same header and key id, a payload we changed: the signature no longer matches.
    let parts: Vec<&str> = api.token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
    claims["sub"] = json!("someone-else");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url_encode(claims.to_string().as_bytes()),
        parts[2]
    );
    let bearer = |t: &str| Some(format!("Bearer {t}"));

    type Case<'a> = (
        &'a str,
        Option<String>,
        Option<(&'a str, &'a str)>,
        StatusCode,
        &'a str,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "no Authorization",
            None,
            Some(("KEY", KEY)),
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Authorization",
        ),
        (
            "Basic scheme",
            Some("Basic dTpw".into()),
            Some(("KEY", KEY)),
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Bearer",
        ),
        (
            "not a JWT",
            bearer("not-a-jwt"),
            Some(("KEY", KEY)),
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "not a JWT",
        ),
        (
            "tampered payload",
            bearer(&tampered),
            Some(("KEY", KEY)),
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "signature",
        ),
        (
            "another issuer's key",
            bearer(&foreign),
            Some(("KEY", KEY)),
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "key the issuer does not publish",
        ),
        (
            "no telemetry_apis scope",
            bearer(&no_scope),
            Some(("KEY", KEY)),
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "telemetry_apis",
        ),
        (
            "no key",
            bearer(&api.token),
            None,
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "KEY",
        ),
        (
            "wrong key",
            bearer(&api.token),
            Some(("KEY", "wrong")),
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "KEY",
        ),
    ];
    for (name, authorization, key, want, code, names) in cases {
        let mut request = api
            .app
            .client
            .post(&url)
            .header("Content-Type", "application/json");
        if let Some(a) = authorization {
            request = request.header("Authorization", a);
        }
        if let Some((h, k)) = key {
            request = request.header(h, k);
        }
        let response = request.body(body.clone()).send().await.unwrap();
        if want == StatusCode::UNAUTHORIZED {
            assert!(
                response.headers().contains_key("www-authenticate"),
                "{name}: WWW-Authenticate"
            );
        }
        let (status, got) = read(response).await;
        assert_error(status, &got, want, code, names);
        eprintln!("ok: {name}");
    }
    // The key is also accepted as x-api-key.
    let response = api
        .app
        .client
        .post(&url)
        .header("Authorization", format!("Bearer {}", api.token))
        .header("x-api-key", KEY)
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let api = spawn_api("").await;
    api.app.idp.set_access_token_ttl(Some(1)).await;
    let short = api
        .app
        .idp
        .client_credentials_token(SERVICE, SERVICE_SECRET, "telemetry_apis")
        .await;
    let api = Api {
        token: short,
        ..api
    };
    let (status, _) = api.post(&json!({"user_id": "u1"})).await;
    assert_eq!(status, StatusCode::OK, "valid before it expires");
    // Once its second is over (the test IdP's clock and ours), the same token is refused.
    let (status, body) = poll("the token expires", Duration::from_secs(5), || async {
        let (status, body) = api.post(&json!({"user_id": "u1"})).await;
        (status != StatusCode::OK).then_some((status, body))
    })
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "expired",
    );
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let api = spawn_api("").await;
    // Same issuer, but this server is configured for another audience.
    let toml = format!(
        "[identify_api]\ntoken_issuer = \"{}\"\ntoken_audience = \"billing-api\"\n\
         api_key_hashes = [\"{}\"]\n",
        api.app.idp.issuer,
        key_hash(KEY)
    );
    let other = spawn_app_with(AppOptions {
        extra_toml: toml,
        ..Default::default()
    })
    .await;
    let response = other
        .client
        .post(other.url("/api/identify"))
        .header("Authorization", format!("Bearer {}", api.token))
        .header("KEY", KEY)
        .header("Content-Type", "application/json")
        .body(r#"{"user_id":"u1"}"#)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "audience",
    );
}

#[tokio::test]
async fn bad_requests_are_refused_naming_the_header_or_field() {
    let api = spawn_api("").await;
    let url = api.app.url("/api/identify");
    // Media type.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/json; charset=latin1"),
    ] {
        let mut request = api
            .app
            .client
            .post(&url)
            .header("Authorization", format!("Bearer {}", api.token))
            .header("KEY", KEY);
        if let Some(ct) = content_type {
            request = request.header("Content-Type", ct);
        }
        let (status, body) = read(request.body(r#"{"user_id":"u1"}"#).send().await.unwrap()).await;
        assert_error(
            status,
            &body,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type",
        );
    }
    // Sizes: the request, one object, the number of objects.
    let (status, body) = read(api.post_raw(vec![b' '; 600 * 1024]).await).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        "request body",
    );
    let more = vec!["y".repeat(3000); 12];
    let big = json!({"user_id": "u1", "context": {"blob": "x".repeat(3000), "more": more}});
    let (status, body) = api.post(&big).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        "identify object",
    );
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"user_id": format!("u{i}")}))
        .collect();
    let (status, body) = api.post(&json!(many)).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        "at most 100",
    );
    // JSON and fields.
    let (status, body) = read(api.post_raw(r#"{"user_id": "u1",}"#).await).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        "line 1 column",
    );
    let cases: Vec<(Value, &str)> = vec![
        (json!({"traits": {}}), "user_id"),
        (json!({"user_id": 42}), "`user_id` must be a string"),
        (json!({"user_id": ""}), "`user_id` must not be empty"),
        (
            json!({"user_id": "user\u{202E}nimda"}),
            "`user_id` must not contain bidirectional control",
        ),
        (
            json!({"user_id": "\u{200B}"}),
            "`user_id` must contain a visible character",
        ),
        (
            json!({"user_id": "\u{FEFF}user123"}),
            "`user_id` must not start with a byte-order mark",
        ),
        (
            json!({"user_id": "u".repeat(257)}),
            "`user_id` is longer than 256",
        ),
        (
            json!({"user_id": "u1", "traits": ["a"]}),
            "`traits` must be a JSON object",
        ),
        (
            json!({"user_id": "u1", "traits": "x"}),
            "`traits` must be a JSON object",
        ),
        (
            json!({"user_id": "u1", "traits": {"a": {"b": 1}}}),
            "`traits.a`",
        ),
        (
            json!({"user_id": "u1", "traits": {"a": [1]}}),
            "`traits.a` must be a list of strings",
        ),
        (
            json!({"user_id": "u1", "user_traits": {"a": "x".repeat(5000)}}),
            "`user_traits.a` is longer",
        ),
        (
            json!({"user_id": "u1", "traits": {}, "user_traits": {}}),
            "not both",
        ),
        (
            json!({"user_id": "u1", "event": "signup"}),
            "unknown field `event`",
        ),
        (
            json!({"user_id": "u1", "timestamp": "yesterday"}),
            "`timestamp`",
        ),
        (
            json!({"user_id": "u1", "timestamp": 1606170535}),
            "`timestamp` must be a string",
        ),
        (
            json!({"user_id": "u1", "context": "web"}),
            "`context` must be a JSON object",
        ),
        (json!("user123"), "JSON object"),
        (json!([]), "empty array"),
    ];
    for (request, names) in cases {
        let (status, body) = api.post(&request).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            names,
        );
    }
    let (status, body) = read(api.post_raw("").await).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        "empty",
    );
    // Idempotency-Key must be printable.
    let response = api
        .app
        .client
        .post(&url)
        .header("Authorization", format!("Bearer {}", api.token))
        .header("KEY", KEY)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", "x".repeat(300))
        .body(r#"{"user_id":"u1"}"#)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        "Idempotency-Key",
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_under_api_answer_json() {
    let api = spawn_api("").await;
    let (status, body) = read(api.app.get("/api/identify").await).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "POST",
    );
    let response = api
        .app
        .client
        .put(api.app.url("/api/identify"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    let (status, body) = read(api.app.get("/api/identity").await).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND", "");
}

#[tokio::test]
async fn a_batch_answers_each_item_in_order() {
    let api = spawn_api("").await;
    let batch = json!([
        {"user_id": "b1", "traits": {"plan": "pro"}, "timestamp": "2021-05-06T07:08:09.010Z"},
        {"traits": {"plan": "free"}},
        {"user_id": "b3", "user_traits": {"enrichment_phone": ["+1 555 0100"]}},
    ]);
    let (status, body) = api.post(&batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "partial");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["status"], "success");
    assert_eq!(results[0]["data"]["timestamp"], "2021-05-06T07:08:09.010Z");
    assert_eq!(results[1]["error_code"], "INVALID_REQUEST");
    assert!(results[1]["message"].as_str().unwrap().contains("user_id"));
    assert_eq!(
        results[2]["data"]["traits"]["enrichment_phone"][0],
        "+1 555 0100"
    );
    assert!(api.app.store.get_user("b1").await.unwrap().is_some());
    assert!(api.app.store.get_user("b3").await.unwrap().is_some());

    let (status, body) = api
        .post(&json!([{"user_id": "ok"}, {"user_id": "ok2"}]))
        .await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::OK, json!("success"))
    );
    let (status, body) = api.post(&json!([{"user_id": 1}, "x"])).await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        "0 of 2",
    );
    assert_eq!(body["results"].as_array().unwrap().len(), 2);
}

/// A retry (same key, same request: whitespace, key order and a left-out `timestamp` aside)
/// replays the first answer; the key reused for another request is refused with 422 in the
/// spec's error shape (draft-ietf-httpapi-idempotency-key-header), writing nothing; the same
/// for a `message_id`.
#[tokio::test]
async fn a_repeated_idempotency_key_replays_and_a_reused_one_is_refused_with_422() {
    let api = spawn_api("").await;
    let send = |key: &'static str, body: String| {
        let request = api
            .app
            .client
            .post(api.app.url("/api/identify"))
            .header("Authorization", format!("Bearer {}", api.token))
            .header("KEY", KEY)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", key)
            .body(body);
        async move { request.send().await.unwrap() }
    };
    let body = r#"{"user_id": "idem", "traits": {"plan": "pro", "seats": 3}}"#;
    let first = send("k-1", body.into()).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (_, first) = read(first).await;
    let retry = r#"{"traits":{"seats":3,"plan":"pro"},"user_id":"idem"}"#;
    let again = send("k-1", retry.into()).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let (status, again) = read(again).await;
    assert_eq!((status, &again), (StatusCode::OK, &first));

    let other = json!({"user_id": "idem", "traits": {"plan": "enterprise"}});
    let (status, refused) = read(send("k-1", other.to_string()).await).await;
    assert_error(
        status,
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
        "different request",
    );
    let user = api.app.store.get_user("idem").await.unwrap().unwrap();
    assert_eq!(
        user.traits["plan"], "pro",
        "neither the replay nor the refusal wrote"
    );

    let with_id = json!({"user_id": "idem", "traits": {"seats": 5}, "message_id": "m-1"});
    api.post(&with_id).await;
    let (status, _) = api.post(&with_id).await;
    assert_eq!(status, StatusCode::OK);
    let reused = json!({"user_id": "idem", "traits": {"seats": 6}, "message_id": "m-1"});
    let (status, refused) = api.post(&reused).await;
    assert_error(
        status,
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
        "message_id",
    );
    let calls = api.app.store.identify_calls("idem").await.unwrap();
    let keys: Vec<Option<String>> = calls.into_iter().map(|c| c.0).collect();
    assert_eq!(keys, vec![Some("k-1".to_string()), Some("m-1".to_string())]);
}

/// The retention purge runs in the bridge: a call older than `retention.identify_calls_days`
/// leaves the log, its `message_id` is then a new call's (the idempotency window is the
/// retention), and `/metrics` counts what went.
#[tokio::test]
async fn identify_calls_past_their_retention_leave_the_log_and_their_key_applies_again() {
    // 0.00002 days: 1.7 s.
    let api = spawn_api("\n[retention]\nidentify_calls_days = 0.00002\ninterval_secs = 1\n").await;
    let store = api.app.store.clone();
    let call = json!({"user_id": "short-lived", "traits": {"plan": "pro"}, "message_id": "m-1"});
    let (status, _) = api.post(&call).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(store.identify_calls("short-lived").await.unwrap().len(), 1);
    poll(
        "the call purged from the log",
        Duration::from_secs(20),
        || {
            let store = store.clone();
            async move {
                let calls = store.identify_calls("short-lived").await.unwrap();
                calls.is_empty().then_some(())
            }
        },
    )
    .await;
    let other = json!({"user_id": "short-lived", "traits": {"plan": "team"}, "message_id": "m-1"});
    let (status, body) = api.post(&other).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a new call, not a reused key: {body}"
    );
    let user = store.get_user("short-lived").await.unwrap().unwrap();
    assert_eq!(user.traits["plan"], "team");
    let metrics = api.app.get("/metrics").await.text().await.unwrap();
    let counted = metrics
        .lines()
        .find(|l| l.starts_with("identify_bridge_retention_deleted_total{kind=\"identify_call\"}"));
    let value: f64 = counted
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no identify_call count in /metrics:\n{metrics}"));
    assert!(value >= 1.0, "{counted:?}");
}

/// While a request holds an `Idempotency-Key` (here: its body is half sent), another request
/// with that key answers 409 in the spec's error shape; once the first answers, the key
/// replays as usual.
#[tokio::test]
async fn the_same_idempotency_key_while_the_first_request_is_in_flight_answers_409() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = spawn_api("").await;
    let body = json!({"user_id": "in-flight", "traits": {"plan": "pro"}}).to_string();
    let (head, tail) = body.split_at(10);
    let mut first = tokio::net::TcpStream::connect(("127.0.0.1", api.app.port))
        .await
        .unwrap();
    let request = format!(
        "POST /api/identify HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         KEY: {KEY}\r\nContent-Type: application/json\r\nIdempotency-Key: busy\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{head}",
        api.token,
        body.len()
    );
    first.write_all(request.as_bytes()).await.unwrap();
    let second = |body: String| {
        api.app
            .client
            .post(api.app.url("/api/identify"))
            .header("Authorization", format!("Bearer {}", api.token))
            .header("KEY", KEY)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", "busy")
            .body(body)
            .send()
    };
    // The first request holds the key once the server has read its headers; until then the
    // probe, an invalid body, is refused with 400 and writes nothing.
    let refused = poll(
        "the key held by the first request",
        Duration::from_secs(10),
        || async {
            let (status, answer) = read(second("{}".into()).await.unwrap()).await;
            assert_ne!(status, StatusCode::OK, "{answer}");
            (status == StatusCode::CONFLICT).then_some(answer)
        },
    )
    .await;
    assert_error(
        StatusCode::CONFLICT,
        &refused,
        StatusCode::CONFLICT,
        "IDEMPOTENCY_KEY_IN_USE",
        "Idempotency-Key",
    );
    assert!(api.app.store.get_user("in-flight").await.unwrap().is_none());
    first.write_all(tail.as_bytes()).await.unwrap();
    let mut answer = String::new();
    first.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let replay = second(body.clone()).await.unwrap();
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
}

#[tokio::test]
async fn traits_merge_null_removes_and_created_at_only_moves_earlier() {
    let api = &spawn_api("").await;
    let ok = |v: Value| async move { assert_eq!(api.post(&v).await.0, StatusCode::OK) };
    ok(
        json!({"user_id": "m", "traits": {"a": "1", "b": "2"}, "timestamp": "2022-01-01T00:00:00Z",
              "context": {"ip": "203.0.113.9", "library": {"name": "sdk"}}}),
    )
    .await;
    ok(json!({"user_id": "m", "traits": {"b": null, "c": true}, "timestamp": "2023-01-01T00:00:00Z"})).await;
    let user = api.app.store.get_user("m").await.unwrap().unwrap();
    assert_eq!(user.traits, json!({"a": "1", "c": true}));
    assert_eq!(
        user.created_at.to_rfc3339(),
        "2022-01-01T00:00:00+00:00",
        "a later time is ignored"
    );
    assert_eq!(user.provenance["a"]["source"], "api:identify");
    ok(json!({"user_id": "m", "timestamp": "21-06-01T00:00:00.000Z"})).await;
    let user = api.app.store.get_user("m").await.unwrap().unwrap();
    assert_eq!(
        user.created_at.to_rfc3339(),
        "2021-06-01T00:00:00+00:00",
        "an earlier time wins"
    );
    let calls = api.app.store.identify_calls("m").await.unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].2.as_ref().unwrap()["library"]["name"], "sdk");
}

#[tokio::test]
async fn an_identify_call_repeating_the_sign_in_s_values_keeps_their_provenance() {
    let api = &spawn_api("").await;
    let done = api.app.sign_in("google-workspace", None).await;
    assert!(done.status().is_redirection(), "{}", done.status());
    let (_, me) = api.app.me().await;
    let user_id = me["user_id"].as_str().unwrap();
    let signed_in = api.app.store.get_user(user_id).await.unwrap().unwrap();
    let first_name = signed_in.traits["enrichment_first_name"].clone();
    assert_eq!(
        signed_in.provenance["enrichment_first_name"]["source"],
        "claims:/given_name"
    );
    // Every trait of the sign-in, repeated (as the bridge's own identify call does), and one
    // of them changed.
    let mut traits = signed_in.traits.as_object().unwrap().clone();
    traits.insert("enrichment_last_name".into(), json!("Changed"));
    let (status, _) = api
        .post(&json!({"user_id": user_id, "traits": traits, "timestamp": "2024-01-15T09:30:00Z"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let user = api.app.store.get_user(user_id).await.unwrap().unwrap();
    assert_eq!(user.traits["enrichment_first_name"], first_name);
    for (name, provenance) in signed_in.provenance.as_object().unwrap() {
        if name == "enrichment_last_name" {
            continue;
        }
        assert_eq!(&user.provenance[name], provenance, "{name} kept its source");
    }
    assert_eq!(
        user.provenance["enrichment_last_name"]["source"], "api:identify",
        "a changed value is the API's"
    );
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after_then_recovers() {
    let api =
        spawn_api("require = [\"key\"]\nrate_limit_per_minute = 60\nrate_limit_burst = 2").await;
    let send = || {
        api.app
            .client
            .post(api.app.url("/api/identify"))
            .header("KEY", KEY)
            .header("Content-Type", "application/json")
            .body(r#"{"user_id":"rl"}"#)
            .send()
    };
    assert_eq!(
        send().await.unwrap().status(),
        StatusCode::OK,
        "no token needed with require = [\"key\"]"
    );
    assert_eq!(send().await.unwrap().status(), StatusCode::OK);
    let limited = send().await.unwrap();
    assert_eq!(limited.headers()["retry-after"], "1");
    let (status, body) = read(limited).await;
    assert_error(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        "retry after",
    );
    // A refused call spends nothing: the next one in a second or so goes through.
    poll("the limit recovers", Duration::from_secs(5), || async {
        (send().await.unwrap().status() == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test]
async fn without_configuration_the_endpoint_answers_503() {
    let app = spawn_app_with(AppOptions::default()).await;
    let response = app
        .client
        .post(app.url("/api/identify"))
        .header("Content-Type", "application/json")
        .body(SPEC_SAMPLE)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
        "not configured",
    );
}

#[tokio::test]
async fn the_openapi_document_describes_the_endpoint() {
    let api = spawn_api("require = [\"token\"]").await;
    let (status, doc) = read(api.app.get("/api/openapi.json").await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let post = &doc["paths"]["/api/identify"]["post"];
    let codes: Vec<&str> = post["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for code in [
        "200", "400", "401", "403", "405", "409", "413", "415", "422", "429", "500", "503",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    assert!(post["responses"]["429"]["headers"]["Retry-After"].is_object());
    assert!(post["requestBody"]["content"]["application/json"]["schema"].is_object());
    assert_eq!(
        post["security"],
        json!([{"bearer": ["telemetry_apis"]}]),
        "follows require"
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "IdentifyRequest",
        "IdentifyBody",
        "ErrorBody",
        "BatchResponse",
    ] {
        assert!(schemas.contains_key(name), "{name} schema missing");
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    // What the server enforces: not both trait fields, no empty or blank ids.
    let request = &schemas["IdentifyRequest"];
    assert_eq!(
        request["not"]["required"],
        json!(["traits", "user_traits"]),
        "{request}"
    );
    for id in ["user_id", "message_id"] {
        assert_eq!(request["properties"][id]["minLength"], 1, "{request}");
        let pattern = request["properties"][id]["pattern"].as_str().unwrap();
        let pattern = regex::Regex::new(pattern).unwrap();
        for accepted in ["user123", "ana\u{200D}maria", "ユーザー", " a", "\u{200B}a"] {
            assert!(pattern.is_match(accepted), "{id}: {accepted:?}");
        }
        for refused in [
            "",
            " ",
            "\u{200B}",
            "\u{FEFF}user",
            "user\u{202E}nimda",
            "a\u{7}b",
        ] {
            assert!(!pattern.is_match(refused), "{id}: {refused:?}");
        }
    }
    let codes = &schemas["ErrorCode"]["enum"];
    for code in ["IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_KEY_IN_USE"] {
        assert!(codes.as_array().unwrap().contains(&json!(code)), "{codes}");
    }
}

#[test]
fn configuration_errors_name_the_key() {
    use identify_bridge::config::Settings;
    let cases = [
        ("require = [\"token\", \"cookie\"]\ntoken_issuer = \"http://i\"\ntoken_audience = \"a\"\napi_key_hashes = []", "identify_api.require[1]"),
        ("require = [\"token\"]", "identify_api.token_issuer"),
        ("require = [\"token\"]\ntoken_issuer = \"http://i\"", "identify_api.token_audience"),
        ("require = [\"key\"]", "identify_api.api_key_hashes"),
        ("require = [\"key\"]\napi_key_hashes = [\"abc\"]", "identify_api.api_key_hashes[0]"),
        ("require = []", "identify_api.require"),
        ("require = [\"key\"]\napi_key_hashes = [\"abc\"]\nmax_traits_typo = 1", "max_traits_typo"),
    ];
    for (section, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, format!("[identify_api]\n{section}\n")).unwrap();
        let error =
            Settings::load_with_env(Some(&path), Vec::new(), &identify_bridge::providers::KINDS)
                .unwrap_err()
                .to_string();
        assert!(error.contains(key), "{error:?} does not name {key}");
    }
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("user_id"),
            Just("traits"),
            Just("timestamp"),
            Just("20-11-23T22:28:55.111Z")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("user_id".to_string()),
                    Just("traits".to_string()),
                    Just("user_traits".to_string()),
                    Just("timestamp".to_string()),
                    Just("context".to_string()),
                    Just("message_id".to_string()),
                    ".{0,12}"
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn arbitrary_bodies_never_cause_a_server_error() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let api = runtime.block_on(spawn_api("rate_limit_per_minute = 0"));
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config.clone());
    let bodies = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        any_json().prop_map(|v| v.to_string().into_bytes()),
    ];
    runner
        .run(&bodies, |body| {
            let status = runtime.block_on(async { api.post_raw(body.clone()).await.status() });
            prop_assert!(
                !status.is_server_error(),
                "{status} for {:?}",
                String::from_utf8_lossy(&body)
            );
            prop_assert!(status == StatusCode::OK || status.is_client_error());
            Ok(())
        })
        .unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let shaped = (
        ".{0,300}",
        proptest::collection::btree_map(".{0,10}", any_json(), 0..5),
        any_json(),
    );
    runner
        .run(&shaped, |(user_id, traits, timestamp)| {
            let body = json!({"user_id": user_id, "traits": traits, "timestamp": timestamp});
            let status = runtime.block_on(async { api.post_raw(body.to_string()).await.status() });
            prop_assert!(!status.is_server_error(), "{status} for {body}");
            Ok(())
        })
        .unwrap();
    drop(api);
}
