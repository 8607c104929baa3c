//! The development provider over real HTTP: discovery, the code flow with PKCE driven like a
//! browser, the client-credentials grant, and the refusals (`cargo test --test dev_idp`).

use std::collections::HashMap;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use identify_bridge::dev_idp::DevIdp;
use identify_bridge::providers::oidc::ExtraClaims;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AccessToken, AccessTokenHash, ClientId, ClientSecret, CsrfToken, IdToken, IdTokenClaims,
    IssuerUrl, JsonWebKey, Nonce, PkceCodeChallenge, RedirectUrl, Scope,
};
use reqwest::header::LOCATION;
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

type DevIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

const BRIDGE_ID: &str = "identify-bridge";
const BRIDGE_SECRET: &str = "bridge secret/with+odd:chars";
const SINK_ID: &str = "identify-sink";
const SINK_SECRET: &str = "sink-secret";

/// A development provider on a random port, its data directory and a client that does not
/// follow redirects.
struct TestIdp {
    issuer: String,
    redirect_uri: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Start a provider with the fixture key (generating one per test would be slow).
async fn spawn_idp() -> TestIdp {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test-signing-key.pem");
    std::fs::copy(fixture, dir.path().join("dev-idp-signing-key.pem")).unwrap();
    spawn_idp_in(dir).await
}

async fn spawn_idp_in(dir: tempfile::TempDir) -> TestIdp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = Url::parse(&format!("{base}/dev-idp")).unwrap();
    let idp = DevIdp::load_or_create(dir.path(), issuer).unwrap();
    let redirect_uri = format!("{base}/callback/dev");
    idp.add_client(
        BRIDGE_ID,
        BRIDGE_SECRET,
        vec![redirect_uri.parse().unwrap()],
        &["authorization_code"],
    );
    idp.add_client(SINK_ID, SINK_SECRET, vec![], &["client_credentials"]);
    let router = axum::Router::new().nest("/dev-idp", idp.router());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    TestIdp {
        issuer: idp.issuer().to_string(),
        redirect_uri,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _dir: dir,
    }
}

/// What the relying party remembers between the authorize request and the token request.
struct Pending {
    url: Url,
    state: String,
    nonce: String,
    verifier: String,
}

impl TestIdp {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.issuer)
    }

    async fn metadata(&self) -> CoreProviderMetadata {
        CoreProviderMetadata::discover_async(
            IssuerUrl::new(self.issuer.clone()).unwrap(),
            &self.http,
        )
        .await
        .expect("openidconnect accepts the discovery document")
    }

    async fn client(
        &self,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            self.metadata().await,
            ClientId::new(BRIDGE_ID.into()),
            Some(ClientSecret::new(BRIDGE_SECRET.into())),
        )
        .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).unwrap())
    }

    /// An authorization request as the bridge builds it (PKCE S256, state, nonce).
    async fn begin(&self) -> Pending {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = self
            .client()
            .await
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        Pending {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
        }
    }

    /// Open the sign-in page, then post its hidden fields plus `choice`; the redirect's query.
    async fn sign_in(&self, pending: &Pending, choice: &[(&str, &str)]) -> HashMap<String, String> {
        let page = self.http.get(pending.url.clone()).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("DEVELOPMENT PROVIDER"), "{html}");
        let mut form = hidden_fields(&html);
        form.extend(choice.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let response = self
            .http
            .post(self.url("authorize"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "{}",
            response.text().await.unwrap()
        );
        let location = Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
        assert!(
            location.as_str().starts_with(&self.redirect_uri),
            "{location}"
        );
        location.query_pairs().into_owned().collect()
    }

    async fn redeem(&self, code: &str, verifier: &str) -> reqwest::Response {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", verifier),
        ];
        let id = percent_encode(BRIDGE_ID);
        let secret = percent_encode(BRIDGE_SECRET);
        self.http
            .post(self.url("token"))
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Redeem the code and verify the ID token with openidconnect: signature, issuer,
    /// audience, nonce and at_hash. Returns the claims and the access token.
    async fn finish(
        &self,
        pending: &Pending,
        query: &HashMap<String, String>,
    ) -> (IdTokenClaims<ExtraClaims, CoreGenderClaim>, String) {
        assert_eq!(query["state"], pending.state);
        assert_eq!(query["iss"], self.issuer);
        let response = self.redeem(&query["code"], &pending.verifier).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        let access_token = AccessToken::new(body["access_token"].as_str().unwrap().into());
        let id_token: DevIdToken = body["id_token"].as_str().unwrap().parse().unwrap();
        let client = self.client().await;
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &Nonce::new(pending.nonce.clone()))
            .unwrap()
            .clone();
        let at_hash = AccessTokenHash::from_token(
            &access_token,
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(claims.access_token_hash(), Some(&at_hash));
        (claims, access_token.secret().clone())
    }

    async fn client_credentials(&self, secret: &str, scope: &str) -> reqwest::Response {
        self.http
            .post(self.url("token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", SINK_ID),
                ("client_secret", secret),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap()
    }
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded first.
fn percent_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The first form's hidden inputs, unescaped.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let first_form = html.split("</form>").next().unwrap();
    let re = regex::Regex::new(r#"<input type="hidden" name="([^"]+)" value="([^"]*)">"#).unwrap();
    re.captures_iter(first_form)
        .map(|c| (c[1].to_string(), unescape(&c[2])))
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let mut out = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != name)
        .collect();
    out.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(name, value);
    out
}

async fn oauth_error(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn discovery_is_accepted_by_openidconnect() {
    let idp = spawn_idp().await;
    let metadata = idp.metadata().await;
    assert_eq!(metadata.issuer().as_str(), idp.issuer);
    assert_eq!(metadata.jwks().keys().len(), 1);
    let raw: Value = idp
        .http
        .get(idp.url(".well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        raw["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert!(raw["scopes_supported"]
        .as_array()
        .unwrap()
        .contains(&"telemetry_apis".into()));
    assert_eq!(
        raw["end_session_endpoint"],
        format!("{}/logout", idp.issuer)
    );
}

#[tokio::test]
async fn a_persona_signs_in_through_the_code_flow_and_userinfo_agrees() {
    let idp = spawn_idp().await;
    let pending = idp.begin().await;
    let query = idp
        .sign_in(&pending, &[("action", "persona"), ("persona", "marcus")])
        .await;
    let (claims, access_token) = idp.finish(&pending, &query).await;
    assert_eq!(
        claims.email().unwrap().as_str(),
        "marcus.okafor@contoso-health.example"
    );
    assert_eq!(claims.email_verified(), Some(true));
    assert_eq!(claims.authorized_party().unwrap().as_str(), BRIDGE_ID);
    assert_eq!(
        claims.additional_claims().0["organization"],
        "Contoso Health"
    );

    let info: Value = idp
        .http
        .get(idp.url("userinfo"))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], claims.subject().as_str());
    assert_eq!(info["name"], "Marcus Okafor");
    assert_eq!(info["phone_number"], "+1 312 555 0147");
    assert_eq!(info["address"]["locality"], "Chicago");
}

#[tokio::test]
async fn typed_details_reach_the_id_token() {
    let idp = spawn_idp().await;
    let pending = idp.begin().await;
    let typed = [
        ("action", "typed"),
        ("name", "Ada Lovelace"),
        ("email", "ada@analytical-engines.example"),
        ("company", "Analytical Engines"),
        ("title", "Head of Research"),
        ("city", "Manchester"),
        ("country", "GB"),
        ("phone", "+44 161 496 0000"),
    ];
    let query = idp.sign_in(&pending, &typed).await;
    let (claims, _) = idp.finish(&pending, &query).await;
    let json = serde_json::to_value(&claims).unwrap();
    assert_eq!(json["given_name"], "Ada");
    assert_eq!(json["family_name"], "Lovelace");
    assert_eq!(json["organization"], "Analytical Engines");
    assert_eq!(json["title"], "Head of Research");
    assert_eq!(
        json["address"],
        serde_json::json!({"locality": "Manchester", "country": "GB"})
    );
    assert_eq!(json["phone_number"], "+44 161 496 0000");
}

#[tokio::test]
async fn the_sign_in_form_labels_every_input_and_offers_every_persona() {
    let idp = spawn_idp().await;
    let pending = idp.begin().await;
    let html = idp
        .http
        .get(pending.url.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let inputs =
        regex::Regex::new(r#"<input type="(\w+)" (?:name="[^"]*" )?id="([^"]+)""#).unwrap();
    let ids: Vec<String> = inputs
        .captures_iter(&html)
        .map(|c| c[2].to_string())
        .collect();
    assert_eq!(
        ids.len(),
        identify_bridge::dev_idp::PERSONAS.len() + 7,
        "{html}"
    );
    for id in ids {
        assert!(
            html.contains(&format!(r#"<label for="{id}">"#)),
            "no label for {id}"
        );
    }
    assert!(!html.contains("<script"));
    // For a person to look at (the stylesheet is served by the bridge, not here).
    let _ = std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("dev-idp-sign-in.html"),
        &html,
    );
}

#[tokio::test]
async fn a_typed_email_that_is_not_plausible_shows_the_form_again() {
    let idp = spawn_idp().await;
    let pending = idp.begin().await;
    let mut form: Vec<(String, String)> = pending.url.query_pairs().into_owned().collect();
    form.push(("action".into(), "typed".into()));
    form.push(("email".into(), "not an email".into()));
    let response = idp
        .http
        .post(idp.url("authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.headers().get(LOCATION).is_none());
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"aria-invalid="true""#) && html.contains("Enter an email address like")
    );
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_and_no_redirect() {
    let idp = spawn_idp().await;
    let pending = idp.begin().await;
    for uri in [
        "https://attacker.example/callback",
        &format!("{}/extra", idp.redirect_uri),
    ] {
        let url = with_param(&pending.url, "redirect_uri", uri);
        let response = idp.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get(LOCATION).is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("not registered") && html.contains("DEVELOPMENT PROVIDER"));
    }
}

#[tokio::test]
async fn a_request_without_pkce_is_sent_back_with_invalid_request() {
    let idp = spawn_idp().await;
    let pending = idp.begin().await;
    let url = with_param(&pending.url, "code_challenge_method", "plain");
    let response = idp.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query["error"], "invalid_request");
    assert_eq!(query["state"], pending.state);
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_invalid_grant() {
    let idp = spawn_idp().await;
    let pending = idp.begin().await;
    let query = idp
        .sign_in(&pending, &[("action", "persona"), ("persona", "priya")])
        .await;
    let wrong = PkceCodeChallenge::new_random_sha256().1;
    let response = idp.redeem(&query["code"], wrong.secret()).await;
    assert_eq!(
        oauth_error(response).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
}

#[tokio::test]
async fn a_code_works_only_once() {
    let idp = spawn_idp().await;
    let pending = idp.begin().await;
    let query = idp
        .sign_in(&pending, &[("action", "persona"), ("persona", "jamie")])
        .await;
    idp.finish(&pending, &query).await;
    let again = idp.redeem(&query["code"], &pending.verifier).await;
    assert_eq!(
        oauth_error(again).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
}

#[tokio::test]
async fn cancel_sends_access_denied_back_with_state_and_iss() {
    let idp = spawn_idp().await;
    let pending = idp.begin().await;
    let query = idp.sign_in(&pending, &[("action", "cancel")]).await;
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["state"], pending.state);
    assert_eq!(query["iss"], idp.issuer);
    assert!(!query.contains_key("code"));
}

#[tokio::test]
async fn client_credentials_give_a_jwt_for_the_identify_api() {
    let idp = spawn_idp().await;
    let response = idp.client_credentials(SINK_SECRET, "telemetry_apis").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "telemetry_apis");
    let jwt = body["access_token"].as_str().unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    let decode =
        |p: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    let (header, payload) = (decode(parts[0]), decode(parts[1]));
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(payload["aud"], "identify-api");
    assert_eq!(payload["scope"], "telemetry_apis");
    assert_eq!(payload["sub"], SINK_ID);
    assert_eq!(payload["iss"], idp.issuer);

    let jwks: Value = idp
        .http
        .get(idp.url("jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key: CoreJsonWebKey = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    key.verify_signature(
        &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        signed.as_bytes(),
        &signature,
    )
    .expect("the access token verifies against the JWKS");
}

#[tokio::test]
async fn a_bad_client_secret_is_401_invalid_client() {
    let idp = spawn_idp().await;
    let response = idp.client_credentials("wrong", "telemetry_apis").await;
    assert!(response.headers().contains_key("www-authenticate"));
    assert_eq!(
        oauth_error(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
}

#[tokio::test]
async fn userinfo_refuses_unknown_and_client_credentials_tokens() {
    let idp = spawn_idp().await;
    let body: Value = idp
        .client_credentials(SINK_SECRET, "")
        .await
        .json()
        .await
        .unwrap();
    for token in ["nonsense", body["access_token"].as_str().unwrap()] {
        let response = idp
            .http
            .get(idp.url("userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
    }
}

#[tokio::test]
async fn logout_links_back_only_to_trusted_origins() {
    let idp = spawn_idp().await;
    let page = |uri: String| {
        let url = with_param(
            &Url::parse(&idp.url("logout")).unwrap(),
            "post_logout_redirect_uri",
            &uri,
        );
        let http = idp.http.clone();
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let trusted = page(idp.redirect_uri.replace("/callback/dev", "/login")).await;
    assert!(
        trusted.contains("Back to the application") && trusted.contains("DEVELOPMENT PROVIDER")
    );
    let untrusted = page("https://attacker.example/".into()).await;
    assert!(!untrusted.contains("attacker.example"));
}

#[tokio::test]
async fn the_signing_key_is_created_once_with_owner_only_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Url::parse("http://127.0.0.1:8080/dev-idp").unwrap();
    let first = DevIdp::load_or_create(dir.path(), issuer.clone()).unwrap();
    let path = dir.path().join("dev-idp-signing-key.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let pem = std::fs::read_to_string(&path).unwrap();
    let second = DevIdp::load_or_create(dir.path(), issuer).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);
    assert_eq!(
        format!("{first:?}"),
        format!("{second:?}"),
        "same key, same kid"
    );
}
