//! Identify API bearer tokens beyond signature and claims: the header rules of RFC 7515 and
//! RFC 9068 (`crit`, `typ`), an `iat` in the future, and the key-set fetch limit when the
//! issuer's JWKS fails. Tokens are signed by the real test IdP with its current key; the
//! failing issuer is a real HTTP server that counts its requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::StatusCode as AxumStatus;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, AppOptions};
use crate::identify::{assert_error, key_hash, read, spawn_api, Api, KEY};
use crate::idp::{b64url_decode, b64url_encode};

/// POST a minimal identify call with `token` as the bearer token.
async fn identify_with(api: &Api, token: &str) -> (StatusCode, Value) {
    let response = api
        .app
        .client
        .post(api.app.url("/api/identify"))
        .bearer_auth(token)
        .header("KEY", KEY)
        .json(&json!({"user_id": "u1"}))
        .send()
        .await
        .expect("request");
    read(response).await
}

#[tokio::test]
async fn token_header_and_issue_time_rules_are_enforced() {
    let api = spawn_api("").await;
    // The claims of a real token from the IdP; each case re-signs them with the IdP's key.
    let payload = api.token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&b64url_decode(payload)).unwrap();
    let now = chrono::Utc::now().timestamp();
    let with_iat = |iat: i64| {
        let mut c = claims.clone();
        c["iat"] = json!(iat);
        c
    };
    // (case, extra header fields, claims, refusal naming this, or None: accepted)
    let cases: Vec<(&str, Value, Value, Option<&str>)> = vec![
        ("no typ", json!({}), claims.clone(), None),
        ("typ at+jwt", json!({"typ": "at+jwt"}), claims.clone(), None),
        ("typ JWT", json!({"typ": "JWT"}), claims.clone(), None),
        (
            "typ application/AT+JWT",
            json!({"typ": "application/AT+JWT"}),
            claims.clone(),
            None,
        ),
        (
            "typ application/jwt",
            json!({"typ": "application/jwt"}),
            claims.clone(),
            None,
        ),
        (
            "typ of a DPoP proof",
            json!({"typ": "dpop+jwt"}),
            claims.clone(),
            Some("typ"),
        ),
        (
            "typ of an ID token's logout",
            json!({"typ": "logout+jwt"}),
            claims.clone(),
            Some("typ"),
        ),
        (
            "unknown crit",
            json!({"crit": ["exp"], "exp": now + 600}),
            claims.clone(),
            Some("crit"),
        ),
        (
            "empty crit",
            json!({"crit": []}),
            claims.clone(),
            Some("crit"),
        ),
        ("iat an hour ago", json!({}), with_iat(now - 3600), None),
        (
            "iat in two minutes",
            json!({}),
            with_iat(now + 120),
            Some("iat"),
        ),
    ];
    for (name, header, claims, refused) in cases {
        let token = api.app.idp.sign(header, &claims).await;
        let (status, body) = identify_with(&api, &token).await;
        match refused {
            None => assert_eq!(status, StatusCode::OK, "{name}: {body}"),
            Some(names) => assert_error(
                status,
                &body,
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                names,
            ),
        }
        eprintln!("ok: {name}");
    }
}

/// A token with a well-formed header naming `kid`; its signature is never reached.
fn token_with_kid(kid: &str) -> String {
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid});
    let claims = json!({"sub": "s", "exp": chrono::Utc::now().timestamp() + 600});
    format!(
        "{}.{}.{}",
        b64url_encode(header.to_string().as_bytes()),
        b64url_encode(claims.to_string().as_bytes()),
        b64url_encode(b"not a signature")
    )
}

#[tokio::test]
async fn a_failing_key_set_is_fetched_at_most_once_per_30_seconds() {
    // An issuer whose discovery works and whose JWKS answers 503, counting each request.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let jwks_hits = Arc::new(AtomicUsize::new(0));
    let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
    let hits = jwks_hits.clone();
    let server = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { axum::Json(discovery) }),
        )
        .route(
            "/jwks",
            get(move || async move {
                hits.fetch_add(1, Ordering::SeqCst);
                AxumStatus::SERVICE_UNAVAILABLE
            }),
        );
    tokio::spawn(async move { axum::serve(listener, server).await });
    let app = spawn_app_with(AppOptions {
        extra_toml: format!(
            "[identify_api]\ntoken_issuer = \"{issuer}\"\ntoken_audience = \"identify-api\"\n\
             api_key_hashes = [\"{}\"]\n",
            key_hash(KEY)
        ),
        ..Default::default()
    })
    .await;
    let api = Api {
        app,
        token: String::new(),
    };
    for i in 0..100 {
        let (status, body) = identify_with(&api, &token_with_kid(&format!("kid-{i}"))).await;
        assert_error(
            status,
            &body,
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "token issuer",
        );
    }
    assert_eq!(
        jwks_hits.load(Ordering::SeqCst),
        1,
        "100 tokens with unknown key ids, one JWKS fetch while it fails"
    );
}
