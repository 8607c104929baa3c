//! `spawn_app`: each test gets its own bridge on a random port (started by
//! [`AppBuilder`](crate::harness::AppBuilder)), its own test OpenID provider and a client that
//! keeps cookies and does not follow redirects.
#![allow(dead_code)]

use reqwest::StatusCode;
use url::Url;

use crate::harness::{AppBuilder, RunningApp};
use crate::idp::{IdpClient, TestIdp};

pub const CLIENT_SECRET: &str = "test-client-secret-0123456789";

/// How the provider under test is set up at the test IdP.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Google,
    Microsoft,
    Okta,
    /// Okta's org authorization server with the Users API switched on.
    OktaOrg,
    Oidc,
}

pub const MS_TENANT: &str = "4f8e1c2a-7b3d-4e5f-9a10-2c3d4e5f6a7b";

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Google => "google",
            Kind::Microsoft => "microsoft",
            Kind::Okta => "okta",
            Kind::OktaOrg => "okta-org",
            Kind::Oidc => "corp-sso",
        }
    }
    fn issuer_path(self) -> String {
        match self {
            Kind::Okta => "/oauth2/default".into(),
            Kind::Microsoft => format!("/{MS_TENANT}/v2.0"),
            _ => String::new(),
        }
    }
    /// The provider's TOML, pointed at the test IdP.
    fn toml(self, idp: &TestIdp) -> String {
        let base = idp.base_url();
        let common = format!(
            "name = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{CLIENT_SECRET}\"\n",
            self.name(),
            self.name()
        );
        match self {
            Kind::Google => format!("[[providers]]\nkind = \"google\"\nissuer = \"{}\"\n{common}", idp.issuer),
            Kind::Oidc => format!("[[providers]]\nkind = \"oidc\"\nissuer = \"{}\"\nscopes = [\"openid\", \"profile\", \"email\", \"address\", \"phone\"]\n{common}", idp.issuer),
            Kind::Okta => format!(
                "[[providers]]\nkind = \"okta\"\ndomain = \"{base}\"\nauthorization_server = \"default\"\nscopes = [\"openid\", \"profile\", \"email\", \"address\", \"phone\"]\n{common}"
            ),
            Kind::OktaOrg => format!(
                "[[providers]]\nkind = \"okta\"\ndomain = \"{base}\"\nusers_api = true\n{common}"
            ),
            Kind::Microsoft => format!(
                "[[providers]]\nkind = \"microsoft\"\ntenant = \"{MS_TENANT}\"\nauthority = \"{base}\"\n{common}"
            ),
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub idp: TestIdp,
    pub kind: Kind,
    /// The app's profile store (for checking what a request wrote).
    pub store: identify_bridge::store::Store,
    /// The configuration file the app was built from.
    pub config_path: std::path::PathBuf,
    _app: RunningApp,
}

/// Options for [`spawn_app_with`].
#[derive(Clone, Debug)]
pub struct AppOptions {
    pub kind: Kind,
    /// Extra TOML appended to the configuration.
    pub extra_toml: String,
    pub login_timeout_secs: u64,
    /// Extra lines for the `[session]` table.
    pub session_toml: String,
    /// Run on this database instead of a fresh SQLite file.
    pub database_url: Option<String>,
    /// `server.metrics_listen`.
    pub metrics_listen: Option<String>,
    /// The only token endpoint authentication method the test IdP supports (and lists in
    /// discovery); the client is registered with it. `None`: basic and post, either accepted.
    pub idp_auth_method: Option<&'static str>,
    /// The client's public keys at the test IdP (for `private_key_jwt`).
    pub idp_client_jwks: Option<serde_json::Value>,
    /// TOML lines in the provider's table instead of its `client_secret` line.
    pub client_auth_toml: Option<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            kind: Kind::Google,
            extra_toml: String::new(),
            login_timeout_secs: 600,
            session_toml: String::new(),
            database_url: None,
            metrics_listen: None,
            idp_auth_method: None,
            idp_client_jwks: None,
            client_auth_toml: None,
        }
    }
}

pub async fn spawn_app(kind: Kind) -> TestApp {
    spawn_app_with(AppOptions {
        kind,
        ..Default::default()
    })
    .await
}

/// The bridge with one provider of `options.kind` at its own test IdP, through [`AppBuilder`].
pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().unwrap().port();
    let address = format!("http://127.0.0.1:{port}");
    let kind = options.kind;
    let redirect = format!("{address}/callback/{}", kind.name());
    let mut client = IdpClient::web(kind.name(), CLIENT_SECRET, &redirect);
    client.token_endpoint_auth_method = options.idp_auth_method.map(str::to_owned);
    client.jwks = options.idp_client_jwks.clone();
    let mut idp_config = serde_json::json!({
        "issuer_path": kind.issuer_path(),
        "clients": [client.to_json()],
    });
    if let Some(method) = options.idp_auth_method {
        idp_config["client_auth_methods"] = serde_json::json!([method]);
    }
    let idp = TestIdp::start_with_config(idp_config).await;
    let toml = format!(
        r#"
[server]
allowed_return_origins = ["https://app.example.com"]
provider_timeout_secs = 5
{metrics_listen}

[session]
login_timeout_secs = {timeout}
{session}

{provider}
{extra}
"#,
        timeout = options.login_timeout_secs,
        session = options.session_toml,
        provider = match &options.client_auth_toml {
            Some(lines) => kind
                .toml(&idp)
                .replace(&format!("client_secret = \"{CLIENT_SECRET}\"\n"), lines),
            None => kind.toml(&idp),
        },
        // `{idp_issuer}` in the extra TOML is the test IdP's issuer (e.g. for `[identify_api]`).
        extra = options.extra_toml.replace("{idp_issuer}", &idp.issuer),
        metrics_listen = options
            .metrics_listen
            .as_ref()
            .map(|a| format!("metrics_listen = \"{a}\""))
            .unwrap_or_default(),
    );
    let mut builder = AppBuilder::new().listener(listener).toml(&toml);
    if let Some(url) = &options.database_url {
        builder = builder.database(url);
    }
    let app = builder.start().await;
    TestApp {
        address,
        port,
        client: browser(),
        idp,
        kind,
        store: app.store.clone(),
        config_path: app.config_path.clone(),
        _app: app,
    }
}

/// Where a redirect response points.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on a {} response", response.status()))
        .to_str()
        .unwrap()
        .to_string()
}

pub use crate::harness::client as browser;

impl TestApp {
    /// The same app seen from another browser (its own cookie jar).
    pub fn another_browser(&self) -> TestAppView<'_> {
        TestAppView {
            app: self,
            client: browser(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Begin a sign-in and follow the provider's redirects until it sends the browser back
    /// to our callback; returns that callback URL (not yet requested).
    pub async fn start_sign_in(&self, query: &str) -> String {
        self.start_sign_in_with(&self.client, query).await
    }

    pub async fn start_sign_in_with(&self, client: &reqwest::Client, query: &str) -> String {
        let response = client
            .get(self.url(&format!("/login/{}?{query}", self.kind.name())))
            .send()
            .await
            .expect("login request");
        assert!(
            response.status().is_redirection(),
            "login answered {}",
            response.status()
        );
        let mut next = location(&response);
        for _ in 0..10 {
            if next.starts_with(&self.address) {
                return next;
            }
            let target = Url::parse(&self.idp.base_url())
                .unwrap()
                .join(&next)
                .unwrap();
            let response = client
                .get(target.clone())
                .send()
                .await
                .expect("idp request");
            assert!(
                response.status().is_redirection(),
                "the IdP answered {} at {}: {}",
                response.status(),
                target.path(),
                response.text().await.unwrap_or_default()
            );
            next = location(&response);
        }
        panic!("the IdP never redirected back");
    }

    /// A whole sign-in; returns the callback's response.
    pub async fn sign_in(&self, login_hint: &str, return_to: Option<&str>) -> reqwest::Response {
        self.sign_in_with(&self.client, login_hint, return_to).await
    }

    pub async fn sign_in_with(
        &self,
        client: &reqwest::Client,
        login_hint: &str,
        return_to: Option<&str>,
    ) -> reqwest::Response {
        let mut query = format!("login_hint={login_hint}");
        if let Some(r) = return_to {
            query.push_str(&format!("&return_to={}", urlencode(r)));
        }
        let callback = self.start_sign_in_with(client, &query).await;
        client.get(callback).send().await.expect("callback request")
    }

    pub async fn me(&self) -> (StatusCode, serde_json::Value) {
        let response = self.get("/me").await;
        let status = response.status();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Replace one query parameter of a URL.
pub fn with_param(url: &str, key: &str, value: &str) -> String {
    let mut parsed = Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

/// Another browser on the same app.
pub struct TestAppView<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
}

impl TestAppView<'_> {
    pub async fn sign_in(&self, login_hint: &str, return_to: Option<&str>) -> reqwest::Response {
        self.app
            .sign_in_with(&self.client, login_hint, return_to)
            .await
    }
    pub async fn me(&self) -> (StatusCode, serde_json::Value) {
        let response = self.client.get(self.app.url("/me")).send().await.unwrap();
        let status = response.status();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }
}
