//! Microsoft's multi-tenant authorities (`common`, `organizations`) publish the issuer template
//! `…/{tenantid}/v2.0`, which no real provider we can run here does. This test double serves
//! that discovery document and issues ID tokens signed in the test, so the bridge's tenant
//! issuer logic is exercised over real HTTP with real signatures.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use identify_bridge::providers::oidc::ExtraClaims;
use openidconnect::core::{
    CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    AccessToken, Audience, EndUserEmail, IdToken, IdTokenClaims, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{client, AppBuilder, RunningApp};
use crate::helpers::location;

const KEY: &str = include_str!("../fixtures/test-signing-key.pem");
const ATTACKER_KEY: &str = include_str!("../fixtures/attacker-signing-key.pem");
const WORK_TID: &str = "4f8e1c2a-7b3d-4e5f-9a10-2c3d4e5f6a7b";
const OTHER_TID: &str = "0c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e";
const MSA_TID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";

/// What the next token should look like.
#[derive(Clone, Default)]
struct NextToken {
    nonce: String,
    tid: String,
    /// Defaults to the issuer of `tid`.
    iss: Option<String>,
    attacker_key: bool,
    /// Answer the token request only after this many milliseconds.
    delay_ms: u64,
}

#[derive(Clone)]
struct Fake {
    base: String,
    next: Arc<Mutex<NextToken>>,
}

fn signing_key(pem: &str) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new("test-key-1".into()))).unwrap()
}

async fn discovery(
    State(fake): State<Fake>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
) -> Json<Value> {
    let b = &fake.base;
    Json(json!({
        "issuer": format!("{b}/{{tenantid}}/v2.0"),
        "authorization_endpoint": format!("{b}/{tenant}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{b}/{tenant}/oauth2/v2.0/token"),
        "jwks_uri": format!("{b}/{tenant}/discovery/v2.0/keys"),
        "userinfo_endpoint": format!("{b}/oidc/userinfo"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email"],
    }))
}

async fn keys() -> Json<Value> {
    let jwk = signing_key(KEY).as_verification_key();
    Json(json!({ "keys": [jwk] }))
}

async fn token(State(fake): State<Fake>) -> Json<Value> {
    let next = fake.next.lock().unwrap().clone();
    tokio::time::sleep(std::time::Duration::from_millis(next.delay_ms)).await;
    let iss = next
        .iss
        .clone()
        .unwrap_or_else(|| format!("{}/{}/v2.0", fake.base, next.tid));
    let access_token = AccessToken::new("graph-access-token".into());
    let mut extra = serde_json::Map::new();
    extra.insert("tid".into(), json!(next.tid));
    extra.insert("oid".into(), json!("c0a8e2f1-55d2-4c3b-9e7a-1f2e3d4c5b6a"));
    extra.insert("ver".into(), json!("2.0"));
    let now = chrono::Utc::now();
    let claims = IdTokenClaims::<ExtraClaims, CoreGenderClaim>::new(
        IssuerUrl::new(iss).unwrap(),
        vec![Audience::new(CLIENT_ID.into())],
        now + chrono::Duration::minutes(60),
        now,
        StandardClaims::new(SubjectIdentifier::new(
            "kX2wQ4d9hVb7-3mNqT0rL5sUeYzA1cF8gJ6iKoPjWn0".into(),
        ))
        .set_email(Some(EndUserEmail::new("jane.doe@contoso.com".into()))),
        ExtraClaims(extra),
    )
    .set_nonce(Some(Nonce::new(next.nonce.clone())));
    let key = signing_key(if next.attacker_key { ATTACKER_KEY } else { KEY });
    let id_token = IdToken::<
        ExtraClaims,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >::new(
        claims,
        &key,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        Some(&access_token),
        None,
    )
    .unwrap();
    Json(json!({
        "access_token": access_token.secret(),
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": id_token.to_string(),
    }))
}

async fn userinfo() -> Json<Value> {
    Json(
        json!({"sub": "kX2wQ4d9hVb7-3mNqT0rL5sUeYzA1cF8gJ6iKoPjWn0", "name": "Jane Doe", "email": "jane.doe@contoso.com"}),
    )
}

struct Setup {
    app: String,
    client: reqwest::Client,
    fake: Fake,
    _running: RunningApp,
}

async fn setup(tenant: &str, allowed_tenants: &[&str]) -> Setup {
    let fake_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_addr: SocketAddr = fake_listener.local_addr().unwrap();
    let fake = Fake {
        base: format!("http://{fake_addr}"),
        next: Arc::default(),
    };
    let router = Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(keys))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/oidc/userinfo", get(userinfo))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(fake_listener, router).await.unwrap() });

    let toml = format!(
        r#"
[server]
provider_timeout_secs = 1
[session]
store = "memory"
[[providers]]
name = "ms"
kind = "microsoft"
tenant = "{tenant}"
allowed_tenants = {allowed:?}
authority = "{base}"
client_id = "{CLIENT_ID}"
client_secret = "secret"
"#,
        allowed = allowed_tenants,
        base = fake.base,
    );
    let running = AppBuilder::new().toml(&toml).start().await;
    Setup {
        app: running.address.clone(),
        client: client(),
        fake,
        _running: running,
    }
}

impl Setup {
    /// Start a sign-in, prepare the token the fake will issue, and call back.
    async fn sign_in(&self, next: NextToken) -> reqwest::Response {
        let start = self
            .client
            .get(format!("{}/login/ms", self.app))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), StatusCode::SEE_OTHER);
        let authorize = url::Url::parse(&location(&start)).unwrap();
        let param = |k: &str| {
            authorize
                .query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        *self.fake.next.lock().unwrap() = NextToken {
            nonce: param("nonce"),
            ..next
        };
        self.client
            .get(format!(
                "{}/callback/ms?code=the-code&state={}",
                self.app,
                param("state")
            ))
            .send()
            .await
            .unwrap()
    }

    async fn me(&self) -> (StatusCode, Value) {
        let r = self
            .client
            .get(format!("{}/me", self.app))
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn common_verifies_against_the_issuer_of_the_tokens_tenant() {
    let s = setup("common", &[]).await;
    let response = s
        .sign_in(NextToken {
            tid: WORK_TID.into(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{}",
        response.text().await.unwrap()
    );
    let (status, me) = s.me().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["issuer"], format!("{}/{WORK_TID}/v2.0", s.fake.base));
}

#[tokio::test]
async fn an_issuer_for_another_tenant_than_tid_is_refused() {
    let s = setup("common", &[]).await;
    let iss = Some(format!("{}/{OTHER_TID}/v2.0", s.fake.base));
    let response = s
        .sign_in(NextToken {
            tid: WORK_TID.into(),
            iss,
            ..Default::default()
        })
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(s.me().await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let s = setup("common", &[]).await;
    let response = s
        .sign_in(NextToken {
            tid: WORK_TID.into(),
            attacker_key: true,
            ..Default::default()
        })
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tenants_outside_allowed_tenants_are_refused() {
    let s = setup("organizations", &[OTHER_TID]).await;
    let response = s
        .sign_in(NextToken {
            tid: WORK_TID.into(),
            ..Default::default()
        })
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let ok = s
        .sign_in(NextToken {
            tid: OTHER_TID.into(),
            ..Default::default()
        })
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn organizations_refuses_personal_accounts_and_non_guid_tenants() {
    let s = setup("organizations", &[]).await;
    let msa = s
        .sign_in(NextToken {
            tid: MSA_TID.into(),
            ..Default::default()
        })
        .await;
    assert_eq!(msa.status(), StatusCode::FORBIDDEN);
    let junk = s
        .sign_in(NextToken {
            tid: "not-a-guid".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(junk.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_gives_a_504_page() {
    let s = setup("common", &[]).await;
    let response = s
        .sign_in(NextToken {
            tid: WORK_TID.into(),
            delay_ms: 2500,
            ..Default::default()
        })
        .await;
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(response.text().await.unwrap().contains("did not answer"));
    assert_eq!(s.me().await.0, StatusCode::UNAUTHORIZED);
}
