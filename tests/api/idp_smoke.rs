//! Smoke tests for the test OpenID Provider harness (`tests/idp`).

use std::collections::HashMap;

use serde_json::Value;
use url::Url;

use crate::idp::{jwt_header, jwt_payload, pkce_s256, IdpClient, TestIdp};

const CLIENT_ID: &str = "bridge-test";
const CLIENT_SECRET: &str = "s3cr3t+/with=odd&chars";
const REDIRECT_URI: &str = "http://127.0.0.1:9/auth/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-test-verifier";

fn web_client() -> IdpClient {
    IdpClient::web(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI)
}

use crate::harness::client as browser;

fn auth_url(idp_disco: &Value, login_hint: &str, state: &str, nonce: &str) -> Url {
    let mut url = Url::parse(idp_disco["authorization_endpoint"].as_str().unwrap()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", "openid profile email address phone")
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &pkce_s256(VERIFIER))
        .append_pair("code_challenge_method", "S256")
        .append_pair("login_hint", login_hint);
    url
}

/// Follows redirects (keeping cookies) until the Location starts with the redirect_uri and
/// returns that URL's query parameters.
async fn run_authorize(
    browser: &reqwest::Client,
    start: Url,
    idp: &TestIdp,
) -> HashMap<String, String> {
    let mut url = start;
    for _ in 0..10 {
        let resp = browser.get(url.clone()).send().await.unwrap();
        let status = resp.status();
        assert!(
            status.is_redirection(),
            "expected a redirect from {url}, got {status}: {}\n--- idp stderr ---\n{}",
            resp.text().await.unwrap_or_default(),
            idp.stderr_log()
        );
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let next = url.join(&location).unwrap();
        if next.as_str().starts_with(REDIRECT_URI) {
            return next.query_pairs().into_owned().collect();
        }
        url = next;
    }
    panic!(
        "too many redirects\n--- idp stderr ---\n{}",
        idp.stderr_log()
    );
}

#[tokio::test]
async fn discovery_lists_endpoints() {
    let idp = TestIdp::start("/oauth2/default", vec![web_client()]).await;
    assert!(idp.issuer.ends_with("/oauth2/default"), "{}", idp.issuer);
    let d = idp.discovery().await;
    assert_eq!(d["issuer"], idp.issuer.as_str());
    for ep in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        let v = d[ep]
            .as_str()
            .unwrap_or_else(|| panic!("{ep} missing: {d}"));
        assert!(v.starts_with(&idp.issuer), "{ep} = {v}");
    }
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    let methods = d["token_endpoint_auth_methods_supported"].to_string();
    assert!(
        methods.contains("client_secret_basic") && methods.contains("client_secret_post"),
        "{methods}"
    );
    assert!(d["code_challenge_methods_supported"]
        .to_string()
        .contains("S256"));
    for claim in [
        "hd",
        "tid",
        "oid",
        "xms_edov",
        "title",
        "department",
        "organization",
        "address",
        "phone_number",
    ] {
        assert!(
            d["claims_supported"].to_string().contains(claim),
            "claim {claim} not supported"
        );
    }
    let health = reqwest::get(format!("{}/__control/health", idp.base_url()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn authorization_code_flow_with_userinfo() {
    let idp = TestIdp::start("/oauth2/default", vec![web_client()]).await;
    let d = idp.discovery().await;
    let browser = browser();

    let params = run_authorize(
        &browser,
        auth_url(&d, "okta-user", "state-123", "nonce-456"),
        &idp,
    )
    .await;
    assert_eq!(params.get("state").map(String::as_str), Some("state-123"));
    assert_eq!(
        params.get("iss").map(String::as_str),
        Some(idp.issuer.as_str())
    );
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("no code: {params:?}"));

    // client_secret_post this time (client_secret_basic is covered by client credentials).
    let http = reqwest::Client::new();
    let resp = http
        .post(d["token_endpoint"].as_str().unwrap())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let tokens: Value = resp.json().await.unwrap();
    assert!(
        status.is_success(),
        "token exchange failed: {status} {tokens}\n{}",
        idp.stderr_log()
    );

    let id_token = tokens["id_token"].as_str().unwrap();
    let claims = jwt_payload(id_token);
    assert_eq!(claims["iss"], idp.issuer.as_str());
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["nonce"], "nonce-456");
    assert_eq!(claims["sub"], "00u1a2b3c4D5e6F7g8h9");
    assert_eq!(jwt_header(id_token)["alg"], "RS256");

    let access_token = tokens["access_token"].as_str().unwrap();
    let userinfo: Value = http
        .get(d["userinfo_endpoint"].as_str().unwrap())
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["sub"], "00u1a2b3c4D5e6F7g8h9");
    assert_eq!(userinfo["title"], "VP, Sales Operations");
    assert_eq!(userinfo["department"], "Revenue");
    assert_eq!(userinfo["organization"], "Globex Corp");
    assert_eq!(userinfo["address"]["locality"], "Austin");
    assert_eq!(userinfo["phone_number"], "+1 (512) 555-0143");
    assert_eq!(userinfo["zoneinfo"], "America/Chicago");
    assert_eq!(userinfo["email"], "priya@globex.com");
}

#[tokio::test]
async fn deny_hint_yields_access_denied() {
    let idp = TestIdp::start("", vec![web_client()]).await;
    let d = idp.discovery().await;
    let params = run_authorize(&browser(), auth_url(&d, "deny", "st", "n"), &idp).await;
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("access_denied"),
        "{params:?}"
    );
    assert_eq!(params.get("state").map(String::as_str), Some("st"));
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn modes_override_nonce_and_userinfo_sub() {
    let tenant = "/4f8e1c2a-7b3d-4e5f-9a10-2c3d4e5f6a7b/v2.0";
    let idp = TestIdp::start(tenant, vec![web_client()]).await;
    assert!(idp.issuer.ends_with(tenant));
    let d = idp.discovery().await;
    idp.set_mode(Some("someone-else"), Some("evil")).await;

    let params = run_authorize(
        &browser(),
        auth_url(&d, "microsoft-work", "s", "good-nonce"),
        &idp,
    )
    .await;
    let http = reqwest::Client::new();
    let tokens: Value = http
        .post(d["token_endpoint"].as_str().unwrap())
        .basic_auth(
            crate::idp::form_urlencode(CLIENT_ID),
            Some(crate::idp::form_urlencode(CLIENT_SECRET)),
        )
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], "evil");
    assert_eq!(claims["sub"], "kX2wQ4d9hVb7-3mNqT0rL5sUeYzA1cF8gJ6iKoPjWn0");
    let userinfo: Value = http
        .get(d["userinfo_endpoint"].as_str().unwrap())
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["sub"], "someone-else");
    assert_eq!(userinfo["tid"], "4f8e1c2a-7b3d-4e5f-9a10-2c3d4e5f6a7b");
    assert_eq!(userinfo["xms_edov"], true);

    idp.set_mode(None, None).await;
    let health: Value = reqwest::get(format!("{}/__control/health", idp.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["mode"]["userinfo_sub"], Value::Null);
    assert_eq!(health["mode"]["nonce"], Value::Null);
}

#[tokio::test]
async fn rotate_keys_changes_kid() {
    let idp = TestIdp::start("", vec![web_client()]).await;
    let kids = |jwks: &Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = kids(&idp.jwks().await);
    assert_eq!(before.len(), 1);
    idp.rotate_keys().await;
    let after = kids(&idp.jwks().await);
    assert_eq!(after.len(), 1);
    assert_ne!(before, after);
}

#[tokio::test]
async fn client_credentials_issues_jwt_access_token() {
    let idp = TestIdp::start(
        "/oauth2/default",
        vec![IdpClient::service("telemetry-svc", "svc-secret")],
    )
    .await;
    let token = idp
        .client_credentials_token("telemetry-svc", "svc-secret", "telemetry_apis")
        .await;
    assert_eq!(token.split('.').count(), 3, "not a JWT: {token}");
    let claims = jwt_payload(&token);
    assert!(
        claims["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "telemetry_apis"),
        "{claims}"
    );
    assert_eq!(claims["aud"], "identify-api");
    assert_eq!(claims["iss"], idp.issuer.as_str());
    assert_eq!(claims["client_id"], "telemetry-svc");
    let kid = jwt_header(&token)["kid"].as_str().unwrap().to_owned();
    let jwks = idp.jwks().await;
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());

    // Clients can be added after start; the signing key stays the same.
    idp.add_client(IdpClient::service("late-svc", "late-secret"))
        .await;
    let late = idp
        .client_credentials_token("late-svc", "late-secret", "telemetry_apis")
        .await;
    assert_eq!(jwt_header(&late)["kid"], kid.as_str());
    assert_eq!(jwt_payload(&late)["client_id"], "late-svc");

    // Short TTL for expired-token tests.
    idp.set_access_token_ttl(Some(1)).await;
    let short = idp
        .client_credentials_token("telemetry-svc", "svc-secret", "telemetry_apis")
        .await;
    let c = jwt_payload(&short);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 1);
}
