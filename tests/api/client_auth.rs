//! `private_key_jwt` client authentication against the real test provider, whose client is
//! registered with that method and a public key only: it accepts no other.

use std::time::Duration;

use reqwest::StatusCode;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};

use crate::harness::poll;
use crate::helpers::{spawn_app_with, AppOptions, Kind, TestApp, CLIENT_SECRET};
use crate::idp::b64url_encode;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The public JWK of `tests/fixtures/client-key-rsa.pem`, registered at the test provider.
fn client_jwks() -> Value {
    let pem = std::fs::read_to_string(fixture("client-key-rsa.pem")).unwrap();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    json!({ "keys": [{
        "kty": "RSA",
        "kid": "bridge-key-1",
        "alg": "RS256",
        "use": "sig",
        "n": b64url_encode(&key.n().to_bytes_be()),
        "e": b64url_encode(&key.e().to_bytes_be()),
    }]})
}

/// The Okta org-server provider (with `revalidate_secs = 1`) at a test IdP that knows its client only by `client_jwks`
/// (and lists only `private_key_jwt` in discovery); `client_auth` replaces its secret line.
async fn spawn(client_auth: String) -> TestApp {
    spawn_app_with(AppOptions {
        kind: Kind::OktaOrg,
        idp_auth_method: Some("private_key_jwt"),
        idp_client_jwks: Some(client_jwks()),
        client_auth_toml: Some(client_auth),
        session_toml: "revalidate_secs = 1\n".into(),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn private_key_jwt_signs_in_and_refreshes_where_only_that_method_is_accepted() {
    let app = spawn(format!(
        "token_auth_method = \"private_key_jwt\"\nprivate_key_file = \"{}\"\n\
         private_key_id = \"bridge-key-1\"\ncertificate_file = \"{}\"\n\
         scopes = [\"openid\", \"profile\", \"email\", \"offline_access\"]\n",
        fixture("client-key-rsa.pem"),
        fixture("client-cert-rsa.pem")
    ))
    .await;
    assert_eq!(
        app.idp.discovery().await["token_endpoint_auth_methods_supported"],
        json!(["private_key_jwt"])
    );
    // The code exchange authenticates with a client assertion.
    let response = app.sign_in("okta-user&prompt=consent", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, me) = app.me().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], "priya@globex.com", "{me}");
    // The refresh does too: once the grant is revoked, the next re-validation's refresh is
    // answered invalid_grant and the session ends. Had the provider refused the client
    // (invalid_client), the bridge would keep the session, taking it for the provider's fault.
    assert!(app.idp.revoke_grants("00u1a2b3c4D5e6F7g8h9").await > 0);
    poll(
        "the session ends at a refresh",
        Duration::from_secs(10),
        || async { (app.get("/auth").await.status() == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_client_secret_where_private_key_jwt_is_registered_gets_the_provider_error_page() {
    let app = spawn(format!(
        "token_auth_method = \"client_secret_post\"\nclient_secret = \"{CLIENT_SECRET}\"\n"
    ))
    .await;
    let response = app.sign_in("okta-user", None).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = response.text().await.unwrap();
    assert!(body.contains("gave an error"), "{body}");
    assert!(!body.contains(CLIENT_SECRET), "{body}");
    assert_eq!(app.me().await.0, StatusCode::UNAUTHORIZED);
}
