//! The built-in development OpenID provider, served under `/dev-idp` by `identify-bridge dev`.
//!
//! It lets a newcomer sign in with a ready-made or typed persona before registering an app
//! anywhere: discovery, JWKS, an authorize page, token (authorization code with PKCE S256, and
//! client credentials for the sink), userinfo and an end-session page. The bridge talks to it
//! over real HTTP through the same generic OIDC code as to any other provider.
//!
//! For development only. The signing key is a PEM file in the data directory; authorization
//! codes and access tokens live in memory (lost on restart, expired and capped so the maps
//! cannot grow without bound); the sign-in form trusts whatever persona is chosen. The form has
//! no CSRF token: a forged post can only deliver a code to a registered redirect URI, where the
//! client's own `state` check refuses it.

mod account;
mod authorize;
mod client_auth;
mod keys;
mod oauth;
mod pages;
mod personas;
mod request;
mod store;
mod token;
mod views;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use axum::routing::get;
use axum::Router;
use url::Url;

pub use account::Account;
pub use personas::{Persona, PERSONAS};

use keys::SigningKey;
use store::{CodeGrant, ExpiringMap, TokenGrant};

/// The `aud` of client-credentials access tokens unless changed with
/// [`DevIdp::set_api_audience`].
pub const DEFAULT_API_AUDIENCE: &str = "identify-api";
/// Scopes a client-credentials client may be granted.
pub const SERVICE_SCOPES: &[&str] = &["telemetry_apis"];
/// Scopes the code flow understands (others are refused with `invalid_scope`).
pub const USER_SCOPES: &[&str] = &["openid", "profile", "email", "address", "phone"];

/// An OAuth client registered with [`DevIdp::add_client`].
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<Url>,
    pub grant_types: Vec<String>,
}

impl Client {
    pub(crate) fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// The development provider. Cheap to clone; all clones share keys, clients and grants.
#[derive(Clone)]
pub struct DevIdp {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: Url,
    key: SigningKey,
    api_audience: RwLock<String>,
    clients: RwLock<HashMap<String, Client>>,
    /// Where the logout page may link back to besides redirect URIs' origins: the web apps a
    /// bridge's `return_to` may name (a real provider's registered post-logout redirect URIs).
    post_logout_origins: RwLock<Vec<url::Origin>>,
    codes: ExpiringMap<CodeGrant>,
    access_tokens: ExpiringMap<TokenGrant>,
}

impl DevIdp {
    /// Load or create the signing key (RSA 2048, `dev-idp-signing-key.pem` in `data_dir`,
    /// created with 0600 permissions on first start).
    pub fn load_or_create(data_dir: &Path, issuer: Url) -> anyhow::Result<DevIdp> {
        let key = SigningKey::load_or_create(data_dir)?;
        // No trailing slash: the discovery URL and `iss` must match it exactly.
        let issuer = Url::parse(issuer.as_str().trim_end_matches('/'))?;
        Ok(DevIdp {
            inner: Arc::new(Inner {
                issuer,
                key,
                api_audience: RwLock::new(DEFAULT_API_AUDIENCE.to_string()),
                clients: RwLock::new(HashMap::new()),
                post_logout_origins: RwLock::new(Vec::new()),
                codes: ExpiringMap::new(store::MAX_CODES),
                access_tokens: ExpiringMap::new(store::MAX_ACCESS_TOKENS),
            }),
        })
    }

    /// Register an OAuth client (the bridge's own provider entry, and the sink's
    /// client-credentials client). Registering the same `client_id` again replaces it.
    pub fn add_client(
        &self,
        client_id: &str,
        client_secret: &str,
        redirect_uris: Vec<Url>,
        grant_types: &[&str],
    ) {
        let client = Client {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            redirect_uris,
            grant_types: grant_types.iter().map(|g| g.to_string()).collect(),
        };
        self.inner
            .clients
            .write()
            .expect("dev-idp client lock poisoned")
            .insert(client.client_id.clone(), client);
    }

    /// Change the `aud` of client-credentials access tokens (default `identify-api`).
    pub fn set_api_audience(&self, audience: &str) {
        *self
            .inner
            .api_audience
            .write()
            .expect("dev-idp audience lock poisoned") = audience.to_string();
    }

    /// All routes, to be nested by the caller with `Router::nest("/dev-idp", idp.router())`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/.well-known/openid-configuration", get(pages::discovery))
            .route("/jwks", get(pages::jwks))
            .route(
                "/authorize",
                get(authorize::show_sign_in).post(authorize::sign_in),
            )
            .route("/token", axum::routing::post(token::issue_token))
            .route("/userinfo", get(pages::userinfo).post(pages::userinfo))
            .route("/logout", get(pages::logout))
            .with_state(self.clone())
    }

    /// The issuer, e.g. `http://127.0.0.1:8080/dev-idp` (no trailing slash).
    pub fn issuer(&self) -> &Url {
        &self.inner.issuer
    }

    /// `{issuer}/{path}`.
    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!(
            "{}/{path}",
            self.inner.issuer.as_str().trim_end_matches('/')
        )
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<Client> {
        self.inner
            .clients
            .read()
            .expect("dev-idp client lock poisoned")
            .get(client_id)
            .cloned()
    }

    /// Every registered redirect URI's origin and every allowed post-logout origin (for the
    /// logout page's link back).
    pub(crate) fn redirect_origins(&self) -> Vec<url::Origin> {
        let mut origins: Vec<url::Origin> = self
            .inner
            .clients
            .read()
            .expect("dev-idp client lock poisoned")
            .values()
            .flat_map(|c| c.redirect_uris.iter().map(Url::origin))
            .collect();
        origins.extend(
            self.inner
                .post_logout_origins
                .read()
                .expect("dev-idp origin lock poisoned")
                .iter()
                .cloned(),
        );
        origins
    }

    /// Let the logout page link back to pages of this origin (`post_logout_redirect_uri`).
    pub fn allow_post_logout_origin(&self, origin: url::Origin) {
        self.inner
            .post_logout_origins
            .write()
            .expect("dev-idp origin lock poisoned")
            .push(origin);
    }

    pub(crate) fn api_audience(&self) -> String {
        self.inner
            .api_audience
            .read()
            .expect("dev-idp audience lock poisoned")
            .clone()
    }

    pub(crate) fn key(&self) -> &SigningKey {
        &self.inner.key
    }

    pub(crate) fn codes(&self) -> &ExpiringMap<CodeGrant> {
        &self.inner.codes
    }

    pub(crate) fn access_tokens(&self) -> &ExpiringMap<TokenGrant> {
        &self.inner.access_tokens
    }
}

impl std::fmt::Debug for DevIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIdp")
            .field("issuer", &self.inner.issuer.as_str())
            .field("kid", &self.inner.key.kid())
            .finish_non_exhaustive()
    }
}
