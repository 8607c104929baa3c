//! Configured OpenID providers. The generic authorization-code flow is [`oidc`]; [`discovery`]
//! loads and refreshes each provider's metadata, [`keys`] caches its signing keys (refetch
//! limit included), [`verify`] checks ID tokens and [`client_auth`] authenticates the bridge at
//! the token endpoint. What one kind of provider does differently is behind the [`Quirks`]
//! trait, one file per kind: [`google`], [`microsoft`], [`okta`] and [`generic`]
//! (`kind = "oidc"`).
//!
//! A kind's file holds everything about it: its settings struct (serde and schema derives,
//! validation: [`KindSettings`](crate::config::KindSettings)), its [`Quirks`] (issuer
//! resolution, label, scopes, account, API enrichment, trait rules) and their tests, and a
//! `KIND` static ([`KindOf`]). A new kind is that file, a `mod` line and its entry in
//! [`KINDS`], and its table in the README (a test holds the README to the schema).
//! Configuration reads the kinds from [`KINDS`], which the caller hands to `Settings::load`
//! (configuration does not import this module). `config_tests` loads configurations with them.
//!
//! [`graph`] and [`fetch`] read a provider's own API (Microsoft Graph, the Okta Users API).

pub mod client_auth;
#[cfg(test)]
mod config_tests;
pub mod discovery;
pub mod fetch;
pub mod generic;
pub mod google;
pub mod graph;
pub mod keys;
mod kind;
pub mod microsoft;
pub mod oidc;
pub mod okta;
pub mod quirks;
mod ring_jwk;
pub mod verify;

pub use discovery::{Discovered, ExtraMetadata, Metadata};
pub use keys::JWKS_REFRESH_MIN_INTERVAL;
pub use kind::{Kind, KindList, KindOf};
pub use quirks::{Account, ApiCall, Extras, ProviderData, Quirks, RefreshParams};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openidconnect::IssuerUrl;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::{ProviderSettings, Settings};

/// The placeholder in multi-tenant (Microsoft) discovery documents' issuers.
pub const TENANT_PLACEHOLDER: &str = "{tenantid}";
/// Token endpoint answers larger than this are refused unless configured otherwise
/// (`server.max_token_response_bytes`; also the cap for sinks' client-credentials tokens).
/// Defined with the setting: configuration never imports the features it configures.
pub use crate::config::DEFAULT_MAX_TOKEN_BYTES;
/// What a failed provider call was doing, for messages and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Discovery,
    Jwks,
    Token,
    Userinfo,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Discovery => "discovery",
            Stage::Jwks => "jwks",
            Stage::Token => "token",
            Stage::Userinfo => "userinfo",
        })
    }
}

/// Failures talking to or verifying a provider. Display never contains tokens or codes.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("provider {0} is not ready (its discovery document has not loaded yet)")]
    NotReady(String),
    #[error("the provider did not answer the {0} request in time")]
    Timeout(Stage),
    #[error("the {0} request to the provider failed: {1}")]
    Unreachable(Stage, String),
    #[error("the provider rejected the {0} request: {1}")]
    Rejected(Stage, String),
    #[error("the provider's {0} response is invalid: {1}")]
    InvalidResponse(Stage, String),
    #[error("the ID token failed verification: {0}")]
    InvalidIdToken(String),
    #[error("userinfo subject does not match the ID token subject")]
    SubjectMismatch,
    #[error("{0}")]
    Tenant(#[from] microsoft::TenantError),
}

impl ProviderError {
    /// A short, bounded label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ProviderError::NotReady(_) => "not_ready",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::Unreachable(..) => "unreachable",
            ProviderError::Rejected(..) => "rejected",
            ProviderError::InvalidResponse(..) => "invalid_response",
            ProviderError::InvalidIdToken(_) => "invalid_id_token",
            ProviderError::SubjectMismatch => "subject_mismatch",
            ProviderError::Tenant(_) => "tenant_not_allowed",
        }
    }
}

/// Map a reqwest failure to a provider error for `stage`.
pub(crate) fn transport_error(stage: Stage, e: &reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout(stage)
    } else {
        // reqwest errors name the URL, which holds no secrets for these endpoints.
        ProviderError::Unreachable(stage, e.without_url_ref())
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}
impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut msg = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        msg
    }
}

/// One configured provider and its live state.
#[derive(Debug)]
pub struct Provider {
    pub settings: ProviderSettings,
    /// What this provider's kind does differently.
    quirks: Box<dyn Quirks>,
    /// Where discovery is fetched from: `{base}/.well-known/openid-configuration`.
    pub discovery_base: String,
    pub redirect_url: Url,
    http: reqwest::Client,
    timeout: Duration,
    /// Token endpoint answers larger than this are refused (`server.max_token_response_bytes`).
    max_token_bytes: usize,
    discovered: RwLock<Option<Arc<Discovered>>>,
    /// The last discovery or probe succeeded.
    reachable: std::sync::atomic::AtomicBool,
    last_error: RwLock<Option<String>>,
    last_jwks_fetch: Mutex<Option<Instant>>,
}

impl Provider {
    pub fn new(
        settings: ProviderSettings,
        public_url: &Url,
        http: reqwest::Client,
        timeout: Duration,
        max_token_bytes: usize,
    ) -> Provider {
        let quirks = quirks_for(&settings);
        let discovery_base = quirks.issuer();
        let redirect_url = callback_url(public_url, &settings.name);
        Provider {
            settings,
            quirks,
            discovery_base,
            redirect_url,
            http,
            timeout,
            max_token_bytes,
            discovered: RwLock::new(None),
            reachable: std::sync::atomic::AtomicBool::new(false),
            last_error: RwLock::new(None),
            last_jwks_fetch: Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The HTTP client for this provider's token endpoint (code exchange, refresh): answers
    /// over `server.max_token_response_bytes` are refused.
    pub(crate) fn token_http(&self) -> Traced<'_> {
        Traced::new(&self.http, self.max_token_bytes)
    }

    /// What this provider's kind does differently.
    pub fn quirks(&self) -> &dyn Quirks {
        self.quirks.as_ref()
    }

    /// Read the provider's own API with the user's access token (Graph, the Okta Users API);
    /// never fails the sign-in.
    pub async fn provider_data(
        &self,
        access_token: &str,
        claims: &Map<String, Value>,
    ) -> ProviderData {
        self.quirks
            .provider_data(ApiCall {
                http: &self.http,
                access_token,
                claims,
                timeout: self.timeout,
                provider: self.name(),
            })
            .await
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The bound on each call to this provider.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Every kind of provider. A new kind is its file, its `mod` line above and its entry here.
pub static KINDS: KindList =
    KindList::new(&[&google::KIND, &microsoft::KIND, &okta::KIND, &generic::KIND]);

/// What a kind of provider does differently, from its settings.
pub fn quirks_for(settings: &ProviderSettings) -> Box<dyn Quirks> {
    KINDS
        .iter()
        .find_map(|kind| kind.quirks(&settings.kind))
        .expect("a provider's settings are those of a kind in KINDS")
}

/// The issuer a provider is configured with, as its kind builds it: the URL discovery is read
/// from (`{issuer}/.well-known/openid-configuration`).
pub fn issuer_of(settings: &ProviderSettings) -> String {
    quirks_for(settings).issuer()
}

/// The configuration as `check-config` prints it: secrets redacted, each provider's `issuer`
/// the effective one (built from its kind's keys when not set) and its `redirect_uri`.
pub fn resolved_json(settings: &Settings) -> String {
    let mut value = serde_json::to_value(settings).unwrap_or_default();
    if let Some(list) = value.get_mut("providers").and_then(|p| p.as_array_mut()) {
        for (entry, provider) in list.iter_mut().zip(&settings.providers) {
            if let Some(entry) = entry.as_object_mut() {
                entry.insert("issuer".into(), issuer_of(provider).into());
                entry.insert(
                    "redirect_uri".into(),
                    callback_url(&settings.server.public_url, &provider.name)
                        .to_string()
                        .into(),
                );
            }
        }
    }
    serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("<unprintable: {e}>"))
}

/// The button label: `display_name`, else the kind's name (the provider's name for `oidc`).
pub fn label(settings: &ProviderSettings) -> String {
    if let Some(label) = &settings.display_name {
        return label.clone();
    }
    match quirks_for(settings).label() {
        Some(label) => label.to_string(),
        None => settings.name.clone(),
    }
}

/// `{public_url}/callback/{name}`, the redirect URI to register with the provider.
pub fn callback_url(public_url: &Url, name: &str) -> Url {
    let mut url = public_url.clone();
    let path = format!("{}/callback/{}", url.path().trim_end_matches('/'), name);
    url.set_path(&path);
    url
}

/// All configured providers, in configuration order.
#[derive(Clone, Debug)]
pub struct Providers {
    by_name: Arc<BTreeMap<String, Arc<Provider>>>,
    order: Arc<Vec<String>>,
}

impl Providers {
    pub fn new(settings: &Settings, http: reqwest::Client) -> Providers {
        let mut by_name = BTreeMap::new();
        let mut order = Vec::new();
        for p in &settings.providers {
            order.push(p.name.clone());
            by_name.insert(
                p.name.clone(),
                Arc::new(Provider::new(
                    p.clone(),
                    &settings.server.public_url,
                    http.clone(),
                    settings.server.provider_timeout(),
                    settings.server.max_token_response_bytes,
                )),
            );
        }
        Providers {
            by_name: Arc::new(by_name),
            order: Arc::new(order),
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Provider>> {
        self.by_name.get(name).cloned()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.order.iter().filter_map(|n| self.by_name.get(n))
    }

    /// Start one background discovery task per provider.
    pub fn spawn_discovery(
        &self,
        check_every: Duration,
        stop: &CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.iter()
            .map(|p| tokio::spawn(p.clone().keep_discovered(check_every, stop.clone())))
            .collect()
    }

    /// Wait (up to `timeout`) for every provider to be ready; returns whether all are.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.iter().all(|p| p.is_ready()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The HTTP client for openidconnect/oauth2 requests (token, refresh, client credentials), with
/// the current span's `traceparent` on each and the answer's body read up to a cap:
/// `.request_async(&Traced::new(http, max_bytes))`. A larger answer is refused with
/// [`HttpClientError::Other`](openidconnect::HttpClientError::Other) (see [`TOO_LARGE`]).
pub(crate) struct Traced<'a> {
    http: &'a reqwest::Client,
    max_bytes: usize,
}

/// The start of the error message of an answer over [`Traced`]'s cap.
pub(crate) const TOO_LARGE: &str = "answer larger than";

impl<'a> Traced<'a> {
    pub(crate) fn new(http: &'a reqwest::Client, max_bytes: usize) -> Self {
        Traced { http, max_bytes }
    }
}

type HttpClientError = openidconnect::HttpClientError<reqwest::Error>;

impl<'c> openidconnect::AsyncHttpClient<'c> for Traced<'_> {
    type Error = HttpClientError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpClientError>>
                + Send
                + Sync
                + 'c,
        >,
    >;

    fn call(&'c self, mut request: openidconnect::HttpRequest) -> Self::Future {
        request
            .headers_mut()
            .extend(crate::telemetry::trace_headers());
        let max_bytes = self.max_bytes;
        Box::pin(async move {
            let too_large = || HttpClientError::Other(format!("{TOO_LARGE} {max_bytes} bytes"));
            let request = reqwest::Request::try_from(request).map_err(Box::new)?;
            let response = self.http.execute(request).await.map_err(Box::new)?;
            let mut builder = openidconnect::http::Response::builder()
                .status(response.status())
                .version(response.version());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = match fetch::read_capped(response, max_bytes).await {
                Ok(body) => body,
                Err(fetch::BodyError::TooLarge) => return Err(too_large()),
                Err(fetch::BodyError::Transport(e)) => {
                    return Err(HttpClientError::Reqwest(Box::new(e)))
                }
            };
            builder.body(body).map_err(HttpClientError::Http)
        })
    }
}

pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("identify-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is static and valid")
}

pub(crate) fn issuer_url(s: &str) -> Result<IssuerUrl, ProviderError> {
    IssuerUrl::new(s.to_string())
        .map_err(|e| ProviderError::InvalidIdToken(format!("issuer {s:?} is not a URL: {e}")))
}
